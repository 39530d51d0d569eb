//! Any filter over any document: parsing and evaluation never panic, and evaluation is
//! deterministic. Input: a JSON array `[filter, document]`.
#![no_main]

use automations::engine::filter::Filter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Array(parts)) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let [filter, doc] = parts.as_slice() else { return };
    if let Ok(f) = Filter::parse(filter) {
        assert_eq!(f.matches(doc), f.matches(doc));
    }
});
