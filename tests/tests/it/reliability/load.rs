//! Load with faults: many events against many automations, each event matching exactly one,
//! and a receiver that answers 500 to 5 % of requests at random. The counts must reconcile
//! exactly: events in = executions = delivered + failed; the receiver sees one webhook-id per
//! execution, as many requests per id as the execution has attempts recorded, and never a
//! second success for one id.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::*;

struct Load {
    events: usize,
    automations: usize,
    fail_percent: u64,
    /// For the deadline only: a hang fails the test instead of running forever.
    limit: Duration,
}

async fn run(suite: &str, load: Load) {
    let dir = tempfile::tempdir().expect("data dir");
    let receiver = Receiver::start(Behaviour::FailRandomly { percent: load.fail_percent }).await;
    let service = Launch::sqlite(dir.path()).env("RETRY_SCHEDULE", "100ms,100ms").start();
    let webhook = service.team_with_webhook(&receiver.url()).await;
    let mut automations = Vec::new();
    for k in 0..load.automations {
        automations.push(service.alias_automation(&format!("load {k}"), &format!("alias-{k}"), &webhook).await);
    }
    let events: Vec<Value> = (0..load.events)
        .map(|i| alias_event(&format!("evt-load-{i}"), &format!("alias-{}", i % load.automations)))
        .collect();

    let started = Instant::now();
    let accepted = service.post_events(&events).await as usize;
    assert_eq!(accepted, load.events);
    // The receiver is cheap to ask: wait there first, then reconcile through the API.
    let deadline = Instant::now() + load.limit;
    while receiver.by_webhook_id().len() < load.events {
        assert!(
            Instant::now() < deadline,
            "{} of {} executions reached the receiver",
            receiver.by_webhook_id().len(),
            load.events
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let executions = service.wait_settled(&automations, load.events, load.limit).await;
    let elapsed = started.elapsed();

    // Events in = executions, one per event.
    assert_eq!(executions.len(), accepted, "executions = events in");
    let mut per_event: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &executions {
        *per_event.entry(e["event_id"].as_str().unwrap_or("")).or_insert(0) += 1;
    }
    assert_eq!(per_event.len(), accepted);
    assert!(per_event.values().all(|n| *n == 1), "an event fired twice");
    for (k, automation) in automations.iter().enumerate() {
        let own = executions.iter().filter(|e| e["automation_id"] == automation.as_str()).count();
        assert_eq!(own, load.events / load.automations + usize::from(k < load.events % load.automations));
    }

    // Executions = delivered + failed.
    let statuses = by_status(&executions);
    let delivered = statuses.get("delivered").copied().unwrap_or(0);
    let failed = statuses.get("failed").copied().unwrap_or(0);
    assert_eq!(delivered + failed, executions.len(), "{statuses:?}");

    // The receiver: one webhook-id per execution, requests per id = attempts recorded, at most
    // one success per id, and a failed execution never answered 200.
    let seen = receiver.by_webhook_id();
    assert_eq!(seen.len(), executions.len(), "distinct webhook-ids = executions");
    let mut requests = 0;
    let mut retries = 0;
    for e in &executions {
        let id = e["id"].as_str().unwrap_or("");
        let got = seen.get(id).unwrap_or_else(|| panic!("{id} never reached the receiver"));
        let attempts = e["attempt_count"].as_u64().unwrap_or(0) as usize;
        assert_eq!(got.len(), attempts, "{id}: requests at the receiver = attempts recorded");
        let successes = got.iter().filter(|r| r.status == 200).count();
        match e["status"].as_str() {
            Some("delivered") => assert_eq!(successes, 1, "{id}"),
            _ => assert_eq!(successes, 0, "{id}"),
        }
        requests += got.len();
        retries += got.len() - 1;
    }
    let answered_500 = receiver.received().iter().filter(|r| r.status == 500).count();
    assert_eq!(receiver.received().len(), requests, "no request outside an execution");
    report(
        suite,
        &[
            ("events", &load.events),
            ("automations", &load.automations),
            ("executions", &executions.len()),
            ("delivered", &delivered),
            ("failed", &failed),
            ("requests", &requests),
            ("answered_500", &answered_500),
            ("retries", &retries),
            ("duplicates_beyond_retries", &0),
            ("seconds", &format!("{:.1}", elapsed.as_secs_f64())),
            ("events_per_second", &format!("{:.0}", load.events as f64 / elapsed.as_secs_f64())),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_events_against_a_flaky_receiver_reconcile_exactly() {
    run("load_small", Load { events: 300, automations: 10, fail_percent: 5, limit: Duration::from_secs(180) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "10,000 events take minutes; run by infra/reliability.sh"]
async fn ten_thousand_events_against_fifty_automations_and_a_flaky_receiver_reconcile_exactly() {
    run("load", Load { events: 10_000, automations: 50, fail_percent: 5, limit: Duration::from_secs(1500) }).await;
}
