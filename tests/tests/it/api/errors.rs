//! What every route shares: problem+json, body limits, OpenAPI, and secrecy.

use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;
use crate::common::app::Answer;

async fn raw_post(w: &World, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let res = w
        .app
        .client
        .post(format!("{}{path}", w.app.base))
        .bearer_auth(&w.admin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = res.text().await.unwrap();
    Answer { status, content_type, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
}

per_backend! {
    async fn invalid_input_is_answered_with_a_problem_naming_each_field(backend) {
        let w = World::new(backend).await;
        let spec = json!({"name": " ", "scope": {"type": "project"}, "event": {"type": "RUN_STATE", "states": []},
                          "action": {"type": "no_op"}});
        let a = w.automation_as(&w.admin, &spec).await;
        assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
        let mut found = fields(&a);
        found.sort();
        assert_eq!(found, vec!["event.states", "name", "scope.project"]);
        assert!(a.body["type"].as_str().unwrap().starts_with("https://"));
        assert_eq!(a.body["title"], "Unprocessable Entity");
        assert!(a.body["errors"].as_array().unwrap().iter().all(|e| e["message"].is_string()));
    }
}

per_backend! {
    async fn a_body_over_256_kib_is_refused_as_too_large(backend) {
        let w = World::new(backend).await;
        let body = json!({"name": "BIG", "value": "x".repeat(300 * 1024)});
        assert_problem(&w.post(&team_path("secrets"), &w.admin, &body).await, StatusCode::PAYLOAD_TOO_LARGE);
    }
}

per_backend! {
    async fn unparsable_json_is_a_bad_request(backend) {
        let w = World::new(backend).await;
        let a = raw_post(&w, &team_path("secrets"), "application/json", b"{\"name\": ".to_vec()).await;
        assert_problem(&a, StatusCode::BAD_REQUEST);
    }
}

per_backend! {
    async fn a_body_that_is_not_json_is_refused(backend) {
        let w = World::new(backend).await;
        let a = raw_post(&w, &team_path("secrets"), "text/plain", b"name=X".to_vec()).await;
        assert_problem(&a, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}

per_backend! {
    async fn a_merge_patch_content_type_is_accepted(backend) {
        let w = World::new(backend).await;
        let id = w.webhook_to("deploy", "https://example.com/h").await;
        let res = w
            .app
            .client
            .patch(format!("{}{}", w.app.base, team_path(&format!("webhooks/{id}"))))
            .bearer_auth(&w.admin)
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"url": "https://example.org/x"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}

/// Every operation this suite's routes add, as (method, path).
const OPERATIONS: &[(&str, &str)] = &[
    ("post", "/v1/users"),
    ("post", "/v1/teams"),
    ("get", "/v1/teams/{team}/members"),
    ("put", "/v1/teams/{team}/members/{user}"),
    ("delete", "/v1/teams/{team}/members/{user}"),
    ("post", "/v1/teams/{team}/secrets"),
    ("get", "/v1/teams/{team}/secrets"),
    ("put", "/v1/teams/{team}/secrets/{name}"),
    ("delete", "/v1/teams/{team}/secrets/{name}"),
    ("post", "/v1/teams/{team}/webhooks"),
    ("get", "/v1/teams/{team}/webhooks"),
    ("get", "/v1/teams/{team}/webhooks/{id}"),
    ("patch", "/v1/teams/{team}/webhooks/{id}"),
    ("delete", "/v1/teams/{team}/webhooks/{id}"),
    ("post", "/v1/teams/{team}/webhooks/{id}/test"),
    ("post", "/v1/teams/{team}/webhooks/{id}/rotate-signing-secret"),
    ("get", "/v1/teams/{team}/webhooks/{id}/signing-secret"),
    ("get", "/v1/teams/{team}/slack-integrations"),
    ("get", "/v1/teams/{team}/slack-integrations/{id}"),
    ("delete", "/v1/teams/{team}/slack-integrations/{id}"),
    ("post", "/v1/teams/{team}/automations"),
    ("get", "/v1/teams/{team}/automations"),
    ("get", "/v1/teams/{team}/automations/{id}"),
    ("put", "/v1/teams/{team}/automations/{id}"),
    ("patch", "/v1/teams/{team}/automations/{id}"),
    ("delete", "/v1/teams/{team}/automations/{id}"),
];

per_backend! {
    async fn the_openapi_document_lists_every_config_operation_with_problem_errors(backend) {
        let w = World::new(backend).await;
        let a = w.app.call(reqwest::Method::GET, "/v1/openapi.json", None, None).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.body["openapi"].as_str().unwrap().starts_with("3.1"));
        for (method, path) in OPERATIONS {
            let operation = &a.body["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} is not documented");
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path} has no success answer");
            for status in ["401", "404"].iter().filter(|_| path.starts_with("/v1/teams/{team}")) {
                let content = &responses[*status]["content"];
                assert!(content["application/problem+json"].is_object(), "{method} {path} {status}: {content}");
            }
        }
    }
}

per_backend! {
    async fn no_answer_ever_contains_a_secret_value(backend) {
        let w = World::new(backend).await;
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&server).await;
        let mut answers = Vec::new();
        answers.push(w.post(&team_path("secrets"), &w.admin, &json!({"name": "TOKEN", "value": CANARY})).await);
        answers.push(w.post(&team_path("secrets"), &w.admin, &json!({"name": "HMAC_KEY", "value": CANARY})).await);
        answers.push(w.put(&team_path("secrets/TOKEN"), &w.admin, &json!({"value": format!("{CANARY}-2")})).await);
        let created = w.post(&team_path("webhooks"), &w.admin, &json!({"name": "deploy", "url": server.uri(),
                                                                    "access_token_secret": "TOKEN", "secret": "HMAC_KEY"})).await;
        let webhook = id_of(&created.body);
        answers.push(created);
        let slack = w.slack_integration("alerts").await;
        let spec = json!({"name": "notify", "scope": {"type": "project", "project": "llm"},
                          "event": {"type": "RUN_STATE", "states": ["FAILED"]},
                          "action": {"type": "webhook", "webhook_id": webhook,
                                     "payload": {"auth": "${ACCESS_TOKEN}", "key": "$HMAC_KEY"}}});
        let automation = w.automation_as(&w.admin, &spec).await;
        let automation_id = id_of(&automation.body);
        answers.push(automation);
        let payload = json!({"payload": {"auth": "${ACCESS_TOKEN}", "key": "$HMAC_KEY"}});
        answers.push(w.post(&team_path(&format!("webhooks/{webhook}/test")), &w.admin, &payload).await);
        for path in ["secrets".to_owned(), "webhooks".to_owned(), format!("webhooks/{webhook}"),
                     "slack-integrations".to_owned(), format!("slack-integrations/{slack}"),
                     "automations".to_owned(), format!("automations/{automation_id}"), "members".to_owned()] {
            for token in [&w.admin, &w.member] {
                answers.push(w.get(&team_path(&path), token).await);
            }
        }
        answers.push(w.delete(&team_path("secrets/TOKEN"), &w.admin).await);
        answers.push(w.delete(&team_path(&format!("slack-integrations/{slack}")), &w.admin).await);
        answers.push(w.post(&team_path("secrets"), &w.admin, &json!({"name": "TOKEN", "value": CANARY})).await);
        assert!(answers.len() > 20);
        for a in &answers {
            assert!(!a.text.contains(CANARY), "a secret value leaked: {}", a.text);
        }
        // The receiver did get the values: the test request really used them.
        let request = &server.received_requests().await.unwrap()[0];
        assert!(String::from_utf8_lossy(&request.body).contains(CANARY));
    }
}

per_backend! {
    async fn a_cursor_of_another_list_is_refused(backend) {
        let w = World::new(backend).await;
        w.secret("A", "v").await;
        w.secret("B", "v").await;
        let page = w.get(&format!("{}?limit=1", team_path("secrets")), &w.admin).await;
        let cursor = page.body["next_cursor"].as_str().unwrap();
        assert_invalid(&w.get(&format!("{}?cursor={cursor}", team_path("webhooks")), &w.admin).await, "cursor");
    }
}
