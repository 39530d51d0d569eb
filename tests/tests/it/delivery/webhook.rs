//! Webhook deliveries through the local worker: what is sent, and what each kind of answer
//! does to the execution (DESIGN §7).

use std::time::Duration;

use automations::delivery::signature::{verify_standard_webhooks, wandb_signature};
use automations::delivery::ssrf::AllowedNetworks;
use automations::domain::execution::ExecutionStatus;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;
use crate::common::app::TestApp;

async fn receiver(answers: Vec<(ResponseTemplate, Option<u64>)>) -> MockServer {
    let server = MockServer::start().await;
    // Earlier answers win while they last (lower priority number first).
    for (priority, (answer, times)) in answers.into_iter().enumerate() {
        let mock = Mock::given(method("POST")).and(path("/hook")).respond_with(answer);
        let mock = match times {
            Some(n) => mock.up_to_n_times(n),
            None => mock,
        };
        mock.with_priority(u8::try_from(priority + 1).unwrap()).mount(&server).await;
    }
    server
}

per_backend! {
    async fn a_delivered_webhook_carries_both_signatures_and_the_bearer_token(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = receiver(vec![(ResponseTemplate::new(200).set_body_string("thanks"), None)]).await;
        let (webhook, signing) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Delivered);
        assert_eq!(done.attempt_count, 1);
        assert_eq!(done.attempts[0].status_code, Some(200));
        assert_eq!(done.attempts[0].response_body, "thanks");

        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert_eq!(header(request, "content-type"), "application/json");
        assert!(header(request, "user-agent").starts_with("automations/"));
        assert_eq!(header(request, "authorization"), format!("Bearer {CANARY_TOKEN}"));
        assert_eq!(header(request, "webhook-id"), execution.id.as_str());
        let timestamp: i64 = header(request, "webhook-timestamp").parse().unwrap();
        assert!(verify_standard_webhooks(&signing, execution.id.as_str(), timestamp, &request.body, &header(request, "webhook-signature")));
        assert_eq!(header(request, "x-wandb-signature"), wandb_signature(CANARY_SECRET.as_bytes(), &request.body));
        let body: Value = request.body_json().unwrap();
        assert_eq!(body, json!({"text": "churn-model is now production", "token": CANARY_TOKEN, "key": CANARY_SECRET}));

        let recorded = done.request.unwrap();
        assert_eq!(recorded.url, webhook.url);
        assert_eq!(recorded.headers["Authorization"], "Bearer ***");
        assert_eq!(recorded.headers["webhook-id"], execution.id.as_str());
        assert_eq!(recorded.body, json!({"text": "churn-model is now production", "token": "***", "key": "***"}));
    }
}

per_backend! {
    async fn two_server_errors_then_a_success_deliver_on_the_third_attempt(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = receiver(vec![(ResponseTemplate::new(500), Some(2)), (ResponseTemplate::new(200), None)]).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Delivered);
        let codes: Vec<_> = done.attempts.iter().map(|a| (a.number, a.status_code)).collect();
        assert_eq!(codes, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 3);
        assert!(requests.iter().all(|r| header(r, "webhook-id") == execution.id.as_str()));
    }
}

per_backend! {
    async fn a_client_error_fails_at_once_after_one_attempt(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = receiver(vec![(ResponseTemplate::new(400).set_body_string("bad field"), None)]).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert!(done.reason.as_deref().unwrap().contains("HTTP 400"), "{:?}", done.reason);
        assert_eq!(done.attempts.len(), 1);
        assert_eq!(done.attempts[0].response_body, "bad field");
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}

per_backend! {
    async fn a_receiver_slower_than_the_timeout_is_retried_and_then_fails(backend) {
        let t = TestApp::spawn_with(backend, |c| {
            c.retry = automations::delivery::retry::RetryPolicy::new(
                automations::delivery::retry::RetrySchedule::parse("1s").unwrap(),
            );
        })
        .await;
        let team = seed_team(&t).await;
        let slow = ResponseTemplate::new(200).set_delay(Duration::from_secs(5));
        let server = receiver(vec![(slow, None)]).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        let impatient = with_send_timeout(&t.app, Duration::from_millis(300));
        start_worker(&t, &impatient);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert_eq!(done.attempts.len(), 2);
        for attempt in &done.attempts {
            assert_eq!(attempt.status_code, None);
            assert!(attempt.error.as_deref().unwrap().starts_with("timed out"), "{:?}", attempt.error);
        }
        assert!(done.reason.as_deref().unwrap().starts_with("gave up after 2 attempts"), "{:?}", done.reason);
    }
}

per_backend! {
    async fn a_429_waits_at_least_its_retry_after_before_the_next_attempt(backend) {
        let t = TestApp::spawn_with(backend, |c| {
            c.retry = automations::delivery::retry::RetryPolicy::new(
                automations::delivery::retry::RetrySchedule::parse("100ms").unwrap(),
            );
        })
        .await;
        let team = seed_team(&t).await;
        let limited = ResponseTemplate::new(429).insert_header("Retry-After", "2");
        let server = receiver(vec![(limited, Some(1)), (ResponseTemplate::new(200), None)]).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Delivered);
        assert_eq!(done.attempts.len(), 2);
        assert_eq!(done.attempts[0].status_code, Some(429));
        let gap = done.attempts[1].at.duration_since(done.attempts[0].at);
        assert!(gap >= jiff::SignedDuration::from_secs(2), "the second attempt came {gap:?} after the first");
    }
}

per_backend! {
    async fn an_unreachable_receiver_is_retried_on_schedule_and_then_fails(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &closed_port_url().await).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert_eq!(done.attempts.len(), 3, "1 + two schedule entries");
        assert!(done.attempts.iter().all(|a| a.error.as_deref().unwrap().starts_with("connection failed")));
        assert!(done.reason.as_deref().unwrap().starts_with("gave up after 3 attempts"), "{:?}", done.reason);
    }
}

per_backend! {
    async fn a_redirect_is_not_followed_and_fails_at_once(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = MockServer::start().await;
        let moved = ResponseTemplate::new(302).insert_header("Location", format!("{}/elsewhere", server.uri()));
        Mock::given(path("/hook")).respond_with(moved).mount(&server).await;
        Mock::given(path("/elsewhere")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert_eq!(done.attempts.len(), 1);
        assert_eq!(done.attempts[0].status_code, Some(302));
        assert!(done.reason.as_deref().unwrap().contains("redirect not followed"), "{:?}", done.reason);
        let requests = server.received_requests().await.unwrap();
        assert!(requests.iter().all(|r| r.url.path() == "/hook"), "the redirect was followed");
    }
}

per_backend! {
    async fn a_private_destination_is_refused_without_connecting(backend) {
        let t = TestApp::spawn_with(backend, |c| c.allowed_networks = AllowedNetworks::none()).await;
        let team = seed_team(&t).await;
        let server = receiver(vec![(ResponseTemplate::new(200), None)]).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert_eq!(done.attempts.len(), 1);
        let error = done.attempts[0].error.as_deref().unwrap();
        assert!(error.starts_with("not sent:") && error.contains("loopback"), "{error}");
        assert!(done.reason.as_deref().unwrap().starts_with("not sent:"), "{:?}", done.reason);
        assert!(server.received_requests().await.unwrap().is_empty());
    }
}

per_backend! {
    async fn a_deleted_webhook_fails_the_execution_without_an_attempt(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = receiver(vec![(ResponseTemplate::new(200), None)]).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        let stored = t.app.repo.webhook(&team.name, &webhook.id).await.unwrap().unwrap();
        t.app.repo.delete_webhook(&team.name, &stored).await.unwrap();
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert!(done.reason.as_deref().unwrap().contains("no longer exists"), "{:?}", done.reason);
        assert!(done.attempts.is_empty());
        assert!(server.received_requests().await.unwrap().is_empty());
    }
}
