//! Any bytes as a producer's message: parsing never panics, and an accepted event's document is
//! an object carrying its id and type.
#![no_main]

use automations::domain::event::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(event) = Event::parse(&value, jiff::Timestamp::UNIX_EPOCH) {
        assert!(event.doc.is_object());
        assert_eq!(event.doc["id"].as_str(), Some(event.id.as_str()));
        assert_eq!(event.doc["type"].as_str(), Some(event.event_type.as_str()));
    }
});
