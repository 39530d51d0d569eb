//! The history API (DESIGN §8): executions of an automation, one execution with its attempts,
//! and the manual redeliver.

use automations::app::repo::keys::secret_path;
use automations::domain::execution::ExecutionStatus;
use automations::domain::names::SecretName;
use automations::domain::secret::SecretValue;
use automations::domain::team::Role;
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;
use crate::common::app::TestApp;

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(status)).mount(&server).await;
    server
}

per_backend! {
    async fn the_history_lists_executions_newest_first_a_page_at_a_time(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, "https://example.com/hook").await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let start = jiff::Timestamp::from_second(t.app.clock.now().as_second() - 60).unwrap();
        let mut ids = Vec::new();
        for minutes in 0..3 {
            let at = start.checked_add(jiff::SignedDuration::from_secs(10 * minutes)).unwrap();
            ids.push(seed_execution_at(&t.app, &team.name, &automation, at).await.id.to_string());
        }
        ids.reverse();

        let base = format!("/v1/teams/{TEAM}/automations/{}/executions", automation.id);
        let first = t.get(&format!("{base}?limit=2"), &team.member).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        let listed: Vec<_> = first.body["items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(listed, ids[..2]);
        assert_eq!(first.body["items"][0]["status"], "pending");
        let cursor = first.body["next_cursor"].as_str().expect("a second page");
        let second = t.get(&format!("{base}?limit=2&cursor={cursor}"), &team.member).await;
        assert_eq!(second.body["items"][0]["id"], ids[2].as_str());
        assert!(second.body["next_cursor"].is_null());
    }
}

per_backend! {
    async fn executions_are_visible_only_to_readers_of_their_team(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, "https://example.com/hook").await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        let other_admin = t.seed_team_with_admin("other-team", "carol").await;
        let producer = t.seed_user("pete").await;
        t.seed_member(TEAM, "pete", Role::Producer, &[]).await;

        let own = t.get(&format!("/v1/teams/{TEAM}/executions/{}", execution.id), &team.member).await;
        assert_eq!(own.status, StatusCode::OK);
        assert_eq!(own.body["id"], execution.id.as_str());
        assert_eq!(own.body["event"]["alias"], "production");

        let foreign = t.get(&format!("/v1/teams/{TEAM}/executions/{}", execution.id), &other_admin).await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND);
        let wrong_team = t.get(&format!("/v1/teams/other-team/executions/{}", execution.id), &other_admin).await;
        assert_eq!(wrong_team.status, StatusCode::NOT_FOUND);
        assert_eq!(wrong_team.content_type, "application/problem+json");
        let list = t.get(&format!("/v1/teams/other-team/automations/{}/executions", automation.id), &other_admin).await;
        assert_eq!(list.status, StatusCode::NOT_FOUND);
        let by_producer = t.get(&format!("/v1/teams/{TEAM}/executions/{}", execution.id), &producer).await;
        assert_eq!(by_producer.status, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn a_redeliver_after_failure_succeeds_once_the_receiver_is_back_with_the_same_webhook_id(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let server = receiver(400).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, &format!("{}/hook", server.uri())).await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        start_worker(&t, &t.app);
        enqueue(&t.app, &first_job(&execution)).await;
        assert_eq!(wait_finished(&t.app, &execution.id).await.status, ExecutionStatus::Failed);
        let first_id = header(&server.received_requests().await.unwrap()[0], "webhook-id");

        // The receiver is fixed and the token rotated: the redeliver uses the current one.
        server.reset().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
        let token = SecretName::parse("TOKEN").unwrap();
        let rotated = SecretValue::new("canary-token-rotated").unwrap();
        t.app.secrets.put(&secret_path::team_secret(&team.name, &token), &rotated).await.unwrap();

        let url = format!("/v1/teams/{TEAM}/executions/{}/redeliver", execution.id);
        let answer = t.post(&url, &team.admin, &json!({})).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        assert_eq!(answer.body["attempt"], 2);
        let done = wait_finished(&t.app, &execution.id).await;
        assert_eq!(done.status, ExecutionStatus::Delivered);
        assert_eq!(done.reason, None);

        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(header(&requests[0], "webhook-id"), first_id);
        assert_eq!(first_id, execution.id.as_str());
        assert_eq!(header(&requests[0], "authorization"), "Bearer canary-token-rotated");

        let detail = t.get(&format!("/v1/teams/{TEAM}/executions/{}", execution.id), &team.member).await;
        let attempts: Vec<_> = detail.body["attempts"].as_array().unwrap().iter().map(|a| (a["number"].clone(), a["status_code"].clone())).collect();
        assert_eq!(attempts, [(json!(1), json!(400)), (json!(2), json!(204))]);
        assert_eq!(detail.body["status"], "delivered");
        assert_eq!(detail.body["request"]["headers"]["Authorization"], "Bearer ***");
    }
}

per_backend! {
    async fn redeliver_needs_the_admin_role_and_a_finished_execution(backend) {
        let t = TestApp::spawn(backend).await;
        let team = seed_team(&t).await;
        let (webhook, _) = seed_webhook(&t.app, &team.name, "https://example.com/hook").await;
        let automation = seed_automation(&t.app, &team.name, webhook_action(&webhook)).await;
        let execution = seed_execution(&t.app, &team.name, &automation).await;
        let url = format!("/v1/teams/{TEAM}/executions/{}/redeliver", execution.id);

        let by_member = t.post(&url, &team.member, &json!({})).await;
        assert_eq!(by_member.status, StatusCode::FORBIDDEN);
        let while_pending = t.post(&url, &team.admin, &json!({})).await;
        assert_eq!(while_pending.status, StatusCode::CONFLICT);
        assert_eq!(while_pending.content_type, "application/problem+json");
        let unknown = t.post(&format!("/v1/teams/{TEAM}/executions/ex_0123456789abcdef/redeliver"), &team.admin, &json!({})).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    }
}
