//! Delivery jobs handled one at a time, as the queue hands them over: duplicates, early copies
//! and jobs that can never be processed (DESIGN §7: idempotent by execution and attempt).

use automations::app::jobs::DeliveryTask;
use automations::app::worker::Outcome;
use automations::domain::execution::ExecutionStatus;
use automations::domain::names::ObjectId;
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;
use crate::common::app::TestApp;

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(status)).mount(&server).await;
    server
}

per_backend! {
    async fn a_duplicate_job_after_success_sends_nothing(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = receiver(200).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;

        assert_eq!(handle_once(&t.app, &first_job(&execution)).await, Outcome::Done);
        assert_eq!(handle_once(&t.app, &first_job(&execution)).await, Outcome::Done);

        assert_eq!(server.received_requests().await.unwrap().len(), 1);
        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Delivered);
        assert_eq!(done.attempts.len(), 1);
    }
}

per_backend! {
    async fn a_copy_of_a_retried_job_that_arrives_early_waits_instead_of_sending(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = receiver(503).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;

        let Outcome::Retry { after: Some(_) } = handle_once(&t.app, &first_job(&execution)).await else {
            panic!("a 503 is retried after a delay");
        };
        let pending = wait_for(&t.app, &execution.id, |e| e.attempt_count == 1).await;
        assert_eq!(pending.status, ExecutionStatus::Pending);
        assert!(pending.next_attempt_at.is_some());

        let early = handle_once(&t.app, &first_job(&execution)).await;
        assert!(matches!(early, Outcome::Retry { after: Some(_) }), "{early:?}");
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
        assert_eq!(t.app.repo.attempts(&execution.id).await.unwrap().len(), 1);
    }
}

per_backend! {
    async fn a_redeliver_job_makes_one_attempt_however_often_it_arrives(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = receiver(400).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        assert_eq!(handle_once(&t.app, &first_job(&execution)).await, Outcome::Done);

        let url = format!("/v1/teams/{TEAM}/executions/{}/redeliver", execution.id);
        assert_eq!(t.post(&url, &team.admin, &json!({})).await.status, StatusCode::ACCEPTED);
        let redeliver =
            DeliveryTask::Redeliver { team: team.name.clone(), execution_id: execution.id.clone(), attempt: 2 };
        assert_eq!(handle_once(&t.app, &redeliver).await, Outcome::Done);
        assert_eq!(handle_once(&t.app, &redeliver).await, Outcome::Done);

        assert_eq!(server.received_requests().await.unwrap().len(), 2);
        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert_eq!(done.attempts.len(), 2);
    }
}

per_backend! {
    async fn a_redeliver_that_fails_retryably_is_not_retried(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = receiver(400).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        assert_eq!(handle_once(&t.app, &first_job(&execution)).await, Outcome::Done);
        server.reset().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&server).await;

        let url = format!("/v1/teams/{TEAM}/executions/{}/redeliver", execution.id);
        assert_eq!(t.post(&url, &team.admin, &json!({})).await.status, StatusCode::ACCEPTED);
        let redeliver =
            DeliveryTask::Redeliver { team: team.name.clone(), execution_id: execution.id.clone(), attempt: 2 };
        assert_eq!(handle_once(&t.app, &redeliver).await, Outcome::Done);

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert!(done.reason.as_deref().unwrap().contains("HTTP 503"), "{:?}", done.reason);
        assert_eq!(done.next_attempt_at, None);
    }
}

per_backend! {
    async fn a_job_for_an_unknown_execution_is_dead_lettered(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let job = DeliveryTask::Deliver {
            team: team.name.clone(),
            execution_id: ObjectId::parse("ex_0123456789abcdef").unwrap(),
            attempt: 1,
        };
        let Outcome::DeadLetter { reason } = handle_once(&t.app, &job).await else { panic!("not dead-lettered") };
        assert!(reason.contains("does not exist"), "{reason}");
    }
}

per_backend! {
    async fn a_message_that_is_not_a_delivery_job_is_dead_lettered(backend) {
        let t = TestApp::spawn(backend).await;
        let message = automations::ports::queue::ReceivedMessage {
            id: "m1".into(),
            receipt: "r1".into(),
            body: r#"{"kind":"unknown"}"#.into(),
            receive_count: 1,
            attributes: Default::default(),
        };
        let handler = automations::app::deliver::DeliverHandler::new(t.app.clone());
        let outcome = automations::app::worker::MessageHandler::handle(&handler, &message).await;
        assert!(matches!(outcome, Outcome::DeadLetter { ref reason } if reason.starts_with("not a delivery job")), "{outcome:?}");
    }
}
