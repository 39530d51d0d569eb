//! Any payload template: compiling never panics, and a compiled one always renders to JSON that
//! serializes and parses back, with every secret masked in the masked rendering.
#![no_main]

use automations::render::template::{SecretNames, Template};
use automations::render::variables::{RenderContext, Variables};
use libfuzzer_sys::fuzz_target;

const CANARY: &str = "fuzz-canary-secret";

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let event = serde_json::json!({"id":"e1","type":"RUN_STATE","team":"t","project":"p","author":"a\"\n<b>",
        "run":{"id":"r1","name":"n$x","state":"FAILED"}});
    let ctx = RenderContext { automation_name: "a", event_type: "RUN_STATE", metric_name: None, metric_value: None };
    let vars = Variables::from_event(&event, &ctx);
    let Ok(t) = Template::compile(&payload, &SecretNames { secret: Some("KEY"), has_access_token: true }) else { return };
    let rendered = t.render(&vars, &|_| Some(CANARY.to_owned()));
    let text = serde_json::to_string(&rendered).expect("rendered JSON serializes");
    let back: serde_json::Value = serde_json::from_str(&text).expect("rendered JSON parses");
    assert_eq!(back, rendered);
    let masked = serde_json::to_string(&t.render_masked(&vars)).expect("masked serializes");
    assert!(!masked.contains(CANARY));
});
