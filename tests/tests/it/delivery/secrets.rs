//! Secret values never reach an execution record the API returns, nor a log line, even when a
//! receiver echoes the request back (DESIGN §3, §7).

use std::io::Write;
use std::sync::{Arc, Mutex};

use automations::domain::execution::ExecutionStatus;
use tracing::instrument::WithSubscriber;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::support::*;
use crate::common::app::TestApp;

/// Answers `status` with the request's Authorization header, URL and body in the response body.
fn echo(status: u16) -> impl Fn(&Request) -> ResponseTemplate {
    move |request: &Request| {
        let echoed =
            format!("{} {} {}", header(request, "authorization"), request.url, String::from_utf8_lossy(&request.body));
        ResponseTemplate::new(status).set_body_string(echoed)
    }
}

async fn echoing_receiver(first: u16, then: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(echo(first)).up_to_n_times(1).with_priority(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(echo(then)).with_priority(2).mount(&server).await;
    server
}

per_backend! {
    async fn no_secret_value_appears_in_any_execution_record_the_api_returns(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = echoing_receiver(500, 400).await;
        let (webhook, signing) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        let slack = MockServer::start().await;
        Mock::given(path(CANARY_SLACK_PATH)).respond_with(echo(404)).mount(&slack).await;
        let integration = seed_slack(&t.app, &team.name, &slack.uri()).await;
        let slack_automation = seed_automation(&t.app, &team.name, slack_action(&integration)).await;
        let slack_execution = seed_execution(&t.app, &team.name, &slack_automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;
        enqueue(&t.app, &first_job(&slack_execution)).await;

        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert_eq!(done.attempts.len(), 2);
        assert!(done.attempts[0].response_body.contains("Bearer ***"), "{}", done.attempts[0].response_body);
        assert_eq!(wait_finished(&t.app, &slack_execution.id).await.status, ExecutionStatus::Failed);
        let signing_secret = signing.expose().trim_start_matches("whsec_");

        for (automation, execution) in [(&automation, &execution), (&slack_automation, &slack_execution)] {
            let detail = t.get(&format!("/v1/teams/{TEAM}/executions/{}", execution.id), &team.member).await;
            assert!(!detail.body["attempts"].as_array().unwrap().is_empty());
            assert_no_secret(&detail.text, &[signing_secret]);
            let list = t.get(&format!("/v1/teams/{TEAM}/automations/{}/executions", automation.id), &team.admin).await;
            assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
            assert_no_secret(&list.text, &[signing_secret]);
        }
    }
}

/// A log sink shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

per_backend! {
    async fn logs_at_trace_level_never_contain_a_secret_value(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = echoing_receiver(500, 200).await;
        let (webhook, signing) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        let slack = MockServer::start().await;
        Mock::given(path(CANARY_SLACK_PATH)).respond_with(echo(410)).mount(&slack).await;
        let integration = seed_slack(&t.app, &team.name, &slack.uri()).await;
        let slack_automation = seed_automation(&t.app, &team.name, slack_action(&integration)).await;
        let slack_execution = seed_execution(&t.app, &team.name, &slack_automation).await;

        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        // With a single scoped dispatcher alive, tracing-core takes it for the only one and
        // lets whichever thread first reaches a callsite (another test's, with no subscriber)
        // cache "never" for it. A second one makes it ask every live dispatcher instead.
        let _second = tracing::Dispatch::new(tracing_subscriber::registry());
        let dispatch = tracing::Dispatch::new(subscriber);
        async {
            handle_once(&t.app, &first_job(&execution)).await;
            handle_once(&t.app, &first_job(&slack_execution)).await;
        }
        .with_subscriber(dispatch)
        .await;

        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("delivery attempt finished"), "nothing was logged: {logs}");
        assert!(logs.contains("outgoing request finished"), "debug lines are missing: {logs}");
        assert!(logs.contains("Slack integration marked broken"), "{logs}");
        assert_no_secret(&logs, &[signing.expose().trim_start_matches("whsec_")]);
    }
}
