//! Slack deliveries: the Block Kit message posted to the incoming webhook, and what Slack's
//! answers do to the execution and the integration (DESIGN §7).

use automations::domain::execution::ExecutionStatus;
use automations::domain::slack::IntegrationState;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;
use crate::common::app::TestApp;

async fn fake_slack(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path(CANARY_SLACK_PATH)).respond_with(answer).mount(&server).await;
    server
}

per_backend! {
    async fn a_slack_message_is_posted_as_block_kit_with_the_artifact_link(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let slack = fake_slack(ResponseTemplate::new(200).set_body_string("ok")).await;
        let integration = seed_slack(&t.app, &team.name, &slack.uri()).await;
        let automation = seed_automation(&t.app, &team.name, slack_action(&integration)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Delivered);
        let requests = slack.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        let body: Value = requests[0].body_json().unwrap();
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert!(blocks[0]["text"]["text"].as_str().unwrap().contains("churn-model is production"));
        assert!(blocks[1]["text"]["text"].as_str().unwrap().contains("Version v7 of *churn-model* by alice"));
        let text = body.to_string();
        assert!(text.contains("https://wandb.example/a/churn-model/v7"), "the artifact link is missing: {text}");

        let recorded = done.request.unwrap();
        assert_eq!(recorded.url, format!("{}/***", slack.uri()));
        assert_eq!(recorded.body, body);
    }
}

per_backend! {
    async fn slack_saying_the_channel_is_archived_marks_the_integration_broken(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let slack = fake_slack(ResponseTemplate::new(410).set_body_string("channel_is_archived")).await;
        let integration = seed_slack(&t.app, &team.name, &slack.uri()).await;
        let automation = seed_automation(&t.app, &team.name, slack_action(&integration)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert_eq!(done.attempts.len(), 1, "no retry after channel_is_archived");
        assert!(done.reason.as_deref().unwrap().contains("channel_is_archived"), "{:?}", done.reason);
        let stored = t.app.repo.slack(&team.name, &integration.id).await.unwrap().unwrap().value;
        assert_eq!(stored.state, IntegrationState::Broken);
        assert_eq!(stored.broken_reason.as_deref(), Some("channel_is_archived"));
        assert_no_secret(&serde_json::to_string(&done).unwrap(), &[]);
    }
}

per_backend! {
    async fn slack_rate_limiting_is_retried_after_its_retry_after(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let slack = MockServer::start().await;
        let limited = ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_string("rate_limited");
        Mock::given(path(CANARY_SLACK_PATH)).respond_with(limited).up_to_n_times(1).with_priority(1).mount(&slack).await;
        Mock::given(path(CANARY_SLACK_PATH)).respond_with(ResponseTemplate::new(200)).with_priority(2).mount(&slack).await;
        let integration = seed_slack(&t.app, &team.name, &slack.uri()).await;
        let automation = seed_automation(&t.app, &team.name, slack_action(&integration)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Delivered);
        let codes: Vec<_> = done.attempts.iter().map(|a| a.status_code).collect();
        assert_eq!(codes, [Some(429), Some(200)]);
        let stored = t.app.repo.slack(&team.name, &integration.id).await.unwrap().unwrap().value;
        assert_eq!(stored.state, IntegrationState::Active);
    }
}

per_backend! {
    async fn a_broken_integration_fails_the_execution_without_calling_slack(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let slack = fake_slack(ResponseTemplate::new(200)).await;
        let integration = seed_slack(&t.app, &team.name, &slack.uri()).await;
        t.app.mark_slack_broken(&team.name, &integration.id, "channel_not_found").await.unwrap();
        let automation = seed_automation(&t.app, &team.name, slack_action(&integration)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert!(done.reason.as_deref().unwrap().contains("reconnect"), "{:?}", done.reason);
        assert!(done.attempts.is_empty());
        assert!(slack.received_requests().await.unwrap().is_empty());
    }
}
