//! The whole path through the `automations` process, as a user runs it: config over HTTP,
//! an event in (HTTP, or the SQS queue with the SDK), a signed webhook out, the history after.

mod support;

use std::time::Duration;

use serde_json::json;

use support::{RequestExt, Tour, wait_for_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_delivers_a_signed_webhook_on_the_embedded_store() {
    let tour = Tour::start_sqlite().await;
    let ids = tour.configure().await;
    tour.post_event("evt-1").await;
    let request = wait_for_request(&tour.receiver, 1, Duration::from_secs(30)).await;
    support::assert_signed(&request, &ids, "s3cr3t-canary");
    assert_eq!(request.json_body()["version"], "ml-team/wandb-registry-models/churn-model:v7");
    let history = tour.wait_for_status(&ids.automation, "delivered").await;
    assert_eq!(history["attempts"].as_array().map(Vec::len), Some(1));
    assert!(!history.to_string().contains("s3cr3t-canary"), "the history shows no secret value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivering_from_the_history_sends_again_with_the_same_webhook_id() {
    let tour = Tour::start_sqlite().await;
    let ids = tour.configure().await;
    tour.post_event("evt-2").await;
    let first = wait_for_request(&tour.receiver, 1, Duration::from_secs(30)).await;
    let execution = tour.wait_for_status(&ids.automation, "delivered").await;
    let id = execution["id"].as_str().expect("execution id");
    let answer = tour.call("POST", &format!("/v1/teams/ml-team/executions/{id}/redeliver"), None).await;
    assert_eq!(answer.0, 202, "{}", answer.1);
    let second = wait_for_request(&tour.receiver, 2, Duration::from_secs(30)).await;
    assert_eq!(first.header_str("webhook-id"), second.header_str("webhook-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_to_the_sqs_queue_is_delivered_by_the_aws_backed_process() {
    let tour = Tour::start_aws().await;
    let ids = tour.configure().await;
    tour.send_event_to_sqs(json!({
        "id": "evt-sqs-1", "type": "ADD_ARTIFACT_ALIAS", "team": "ml-team", "project": "wandb-registry-models",
        "author": "alice", "artifact": {"collection": "churn-model", "version": "v7"}, "alias": "production"}))
        .await;
    let request = wait_for_request(&tour.receiver, 1, Duration::from_secs(60)).await;
    support::assert_signed(&request, &ids, "s3cr3t-canary");
    tour.wait_for_status(&ids.automation, "delivered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_process_cleanly_within_30_seconds() {
    let mut tour = Tour::start_sqlite().await;
    let (status, took) = tour.process.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}
