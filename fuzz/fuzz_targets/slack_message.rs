//! Any title, message, names and links: the Block Kit message stays within Slack's limits
//! (≤ 50 blocks, sections ≤ 3000 characters, header ≤ 150) and never panics.
#![no_main]

use automations::domain::automation::Severity;
use automations::render::slack::{SlackMessage, build_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\u{1}').collect();
    let get = |i: usize| parts.get(i).copied().unwrap_or("");
    let links = parts.iter().skip(6).map(|p| ("link".to_owned(), (*p).to_owned())).collect();
    let m = SlackMessage {
        title: get(0),
        message: get(1),
        severity: Severity::Warn,
        team: get(2),
        project: get(3),
        event_type: get(4),
        author: get(5),
        links,
    };
    let msg = build_message(&m);
    let blocks = msg["blocks"].as_array().expect("blocks");
    assert!(blocks.len() <= 50);
    for b in blocks {
        if b["type"] == "section" {
            assert!(b["text"]["text"].as_str().map_or(0, |t| t.chars().count()) <= 3000);
        }
        if b["type"] == "header" {
            assert!(b["text"]["text"].as_str().map_or(0, |t| t.chars().count()) <= 150);
        }
    }
});
