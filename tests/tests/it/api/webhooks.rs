//! Webhooks: CRUD, signing secrets, and the signed test request.

use automations::delivery::signature::{SigningSecret, verify_standard_webhooks, wandb_signature};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;
use crate::common::app::TestApp;

const URL: &str = "https://example.com/hook";

/// A receiver on 127.0.0.1 answering every POST with `status` and `body`.
async fn receiver(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(status).set_body_string(body)).mount(&server).await;
    server
}

fn header<'a>(request: &'a wiremock::Request, name: &str) -> &'a str {
    request.headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

async fn only_request(server: &MockServer) -> wiremock::Request {
    let mut requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    requests.remove(0)
}

per_backend! {
    async fn creating_a_webhook_answers_it_with_a_signing_secret(backend) {
        let w = World::new(backend).await;
        let a = w.post(&team_path("webhooks"), &w.admin, &json!({"name": "deploy hook", "url": URL})).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert!(a.body["id"].as_str().unwrap().starts_with("wh_"));
        assert_eq!(a.body["name"], "deploy hook");
        assert_eq!(a.body["url"], URL);
        assert_eq!(a.body["access_token_secret"], Value::Null);
        assert_eq!(a.body["secret"], Value::Null);
        assert!(a.body["created_at"].is_string() && a.body["updated_at"].is_string());
        assert!(SigningSecret::parse(a.body["signing_secret"].as_str().unwrap()).is_ok());
    }
}

per_backend! {
    async fn reads_of_a_webhook_never_show_its_signing_secret(backend) {
        let w = World::new(backend).await;
        let created = w.webhook(json!({"name": "deploy", "url": URL})).await;
        let secret = created["signing_secret"].as_str().unwrap();
        let one = w.get(&team_path(&format!("webhooks/{}", id_of(&created))), &w.member).await;
        assert_eq!(one.status, StatusCode::OK);
        assert!(one.body.get("signing_secret").is_none() && !one.text.contains(secret));
        let list = w.get(&team_path("webhooks"), &w.member).await;
        assert_eq!(names(&list, "name"), vec!["deploy"]);
        assert!(!list.text.contains(secret));
    }
}

per_backend! {
    async fn admins_read_the_signing_secret_and_members_may_not(backend) {
        let w = World::new(backend).await;
        let created = w.webhook(json!({"name": "deploy", "url": URL})).await;
        let path = team_path(&format!("webhooks/{}/signing-secret", id_of(&created)));
        let a = w.get(&path, &w.admin).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["signing_secret"], created["signing_secret"]);
        assert_problem(&w.get(&path, &w.member).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn rotating_the_signing_secret_replaces_it(backend) {
        let w = World::new(backend).await;
        let created = w.webhook(json!({"name": "deploy", "url": URL})).await;
        let id = id_of(&created);
        let a = w.post(&team_path(&format!("webhooks/{id}/rotate-signing-secret")), &w.admin, &json!(null)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_ne!(a.body["signing_secret"], created["signing_secret"]);
        let now = w.get(&team_path(&format!("webhooks/{id}/signing-secret")), &w.admin).await;
        assert_eq!(now.body["signing_secret"], a.body["signing_secret"]);
        let member = w.post(&team_path(&format!("webhooks/{id}/rotate-signing-secret")), &w.member, &json!(null)).await;
        assert_problem(&member, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn a_taken_webhook_name_is_a_conflict(backend) {
        let w = World::new(backend).await;
        w.webhook(json!({"name": "deploy", "url": URL})).await;
        let a = w.post(&team_path("webhooks"), &w.admin, &json!({"name": "deploy", "url": URL})).await;
        assert_problem(&a, StatusCode::CONFLICT);
    }
}

per_backend! {
    async fn an_invalid_webhook_name_is_refused_naming_the_field(backend) {
        let w = World::new(backend).await;
        assert_invalid(&w.post(&team_path("webhooks"), &w.admin, &json!({"name": "a/b", "url": URL})).await, "name");
    }
}

per_backend! {
    async fn a_webhook_url_must_be_http_or_https(backend) {
        let w = World::new(backend).await;
        let a = w.post(&team_path("webhooks"), &w.admin, &json!({"name": "x", "url": "ftp://example.com/"})).await;
        assert_invalid(&a, "url");
        assert_invalid(&w.post(&team_path("webhooks"), &w.admin, &json!({"name": "x", "url": "not a url"})).await, "url");
    }
}

per_backend! {
    async fn secrets_a_webhook_refers_to_must_exist(backend) {
        let w = World::new(backend).await;
        let a = w.post(&team_path("webhooks"), &w.admin, &json!({"name": "x", "url": URL, "access_token_secret": "NOPE"})).await;
        assert_invalid(&a, "access_token_secret");
        let a = w.post(&team_path("webhooks"), &w.admin, &json!({"name": "x", "url": URL, "secret": "NOPE"})).await;
        assert_invalid(&a, "secret");
    }
}

per_backend! {
    async fn patching_a_webhook_changes_only_the_given_fields(backend) {
        let w = World::new(backend).await;
        w.secret("TOKEN", "v").await;
        let created = w.webhook(json!({"name": "deploy", "url": URL, "access_token_secret": "TOKEN"})).await;
        let path = team_path(&format!("webhooks/{}", id_of(&created)));
        let a = w.patch(&path, &w.admin, &json!({"url": "https://example.org/new"})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["url"], "https://example.org/new");
        assert_eq!(a.body["name"], "deploy");
        assert_eq!(a.body["access_token_secret"], "TOKEN");
        assert_eq!(a.body["created_at"], created["created_at"]);
        assert_eq!(w.get(&path, &w.admin).await.body, a.body);
    }
}

per_backend! {
    async fn patching_a_secret_to_null_clears_it(backend) {
        let w = World::new(backend).await;
        w.secret("TOKEN", "v").await;
        let created = w.webhook(json!({"name": "deploy", "url": URL, "access_token_secret": "TOKEN", "secret": "TOKEN"})).await;
        let path = team_path(&format!("webhooks/{}", id_of(&created)));
        let a = w.patch(&path, &w.admin, &json!({"access_token_secret": null})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["access_token_secret"], Value::Null);
        assert_eq!(a.body["secret"], "TOKEN");
    }
}

per_backend! {
    async fn a_patched_webhook_is_validated_again(backend) {
        let w = World::new(backend).await;
        let path = team_path(&format!("webhooks/{}", w.webhook_to("deploy", URL).await));
        assert_invalid(&w.patch(&path, &w.admin, &json!({"url": "ftp://x"})).await, "url");
        assert_invalid(&w.patch(&path, &w.admin, &json!({"secret": "NOPE"})).await, "secret");
        assert_invalid(&w.patch(&path, &w.admin, &json!({"name": null})).await, "name");
    }
}

per_backend! {
    async fn patching_a_webhook_to_a_taken_name_is_a_conflict(backend) {
        let w = World::new(backend).await;
        w.webhook_to("first", URL).await;
        let path = team_path(&format!("webhooks/{}", w.webhook_to("second", URL).await));
        assert_problem(&w.patch(&path, &w.admin, &json!({"name": "first"})).await, StatusCode::CONFLICT);
    }
}

per_backend! {
    async fn renaming_a_webhook_frees_its_old_name(backend) {
        let w = World::new(backend).await;
        let path = team_path(&format!("webhooks/{}", w.webhook_to("first", URL).await));
        assert_eq!(w.patch(&path, &w.admin, &json!({"name": "renamed"})).await.status, StatusCode::OK);
        w.webhook_to("first", URL).await;
    }
}

per_backend! {
    async fn a_webhook_patch_with_an_unknown_field_is_a_bad_request(backend) {
        let w = World::new(backend).await;
        let path = team_path(&format!("webhooks/{}", w.webhook_to("deploy", URL).await));
        assert_problem(&w.patch(&path, &w.admin, &json!({"colour": "red"})).await, StatusCode::BAD_REQUEST);
    }
}

per_backend! {
    async fn a_webhook_patch_that_is_not_an_object_is_invalid(backend) {
        let w = World::new(backend).await;
        let path = team_path(&format!("webhooks/{}", w.webhook_to("deploy", URL).await));
        assert_problem(&w.patch(&path, &w.admin, &json!(["url"])).await, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

per_backend! {
    async fn deleting_a_webhook_removes_it_and_its_signing_key(backend) {
        let w = World::new(backend).await;
        let id = w.webhook_to("deploy", URL).await;
        let path = team_path(&format!("webhooks/{id}"));
        assert_eq!(w.delete(&path, &w.admin).await.status, StatusCode::NO_CONTENT);
        assert_problem(&w.get(&path, &w.admin).await, StatusCode::NOT_FOUND);
        assert_eq!(w.stored_secret(&format!("{TEAM}/webhook-signing/{id}")).await, None);
        w.webhook_to("deploy", URL).await;
    }
}

per_backend! {
    async fn a_webhook_an_automation_uses_cannot_be_deleted(backend) {
        let w = World::new(backend).await;
        let id = w.webhook_to("deploy", URL).await;
        let mut spec = no_op_automation("notify", "llm");
        spec["action"] = json!({"type": "webhook", "webhook_id": id});
        w.automation(&spec).await;
        assert_problem(&w.delete(&team_path(&format!("webhooks/{id}")), &w.admin).await, StatusCode::CONFLICT);
    }
}

per_backend! {
    async fn an_unknown_webhook_is_not_found(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.get(&team_path("webhooks/wh_01JAAAAAAAAAAAAAAAAAAAAAAA"), &w.admin).await, StatusCode::NOT_FOUND);
        assert_problem(&w.get(&team_path("webhooks/not-an-id"), &w.admin).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn members_read_webhooks_but_cannot_change_them(backend) {
        let w = World::new(backend).await;
        let path = team_path(&format!("webhooks/{}", w.webhook_to("deploy", URL).await));
        assert_eq!(w.get(&path, &w.member).await.status, StatusCode::OK);
        assert_problem(&w.post(&team_path("webhooks"), &w.member, &json!({"name": "x", "url": URL})).await, StatusCode::FORBIDDEN);
        assert_problem(&w.patch(&path, &w.member, &json!({"url": URL})).await, StatusCode::FORBIDDEN);
        assert_problem(&w.delete(&path, &w.member).await, StatusCode::FORBIDDEN);
        assert_problem(&w.post(&format!("{path}/test"), &w.member, &json!({})).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn producers_cannot_read_webhooks(backend) {
        let w = World::new(backend).await;
        let path = team_path(&format!("webhooks/{}", w.webhook_to("deploy", URL).await));
        assert_problem(&w.get(&team_path("webhooks"), &w.producer).await, StatusCode::FORBIDDEN);
        assert_problem(&w.get(&path, &w.producer).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn outsiders_get_not_found_for_every_webhook_route(backend) {
        let w = World::new(backend).await;
        let path = team_path(&format!("webhooks/{}", w.webhook_to("deploy", URL).await));
        assert_problem(&w.get(&team_path("webhooks"), &w.outsider).await, StatusCode::NOT_FOUND);
        assert_problem(&w.post(&team_path("webhooks"), &w.outsider, &json!({"name": "x", "url": URL})).await, StatusCode::NOT_FOUND);
        assert_problem(&w.get(&path, &w.outsider).await, StatusCode::NOT_FOUND);
        assert_problem(&w.patch(&path, &w.outsider, &json!({})).await, StatusCode::NOT_FOUND);
        assert_problem(&w.delete(&path, &w.outsider).await, StatusCode::NOT_FOUND);
        assert_problem(&w.post(&format!("{path}/test"), &w.outsider, &json!({})).await, StatusCode::NOT_FOUND);
        assert_problem(&w.get(&format!("{path}/signing-secret"), &w.outsider).await, StatusCode::NOT_FOUND);
        assert_problem(&w.post(&format!("{path}/rotate-signing-secret"), &w.outsider, &json!(null)).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn the_webhook_list_pages_with_limit_and_cursor(backend) {
        let w = World::new(backend).await;
        for i in 0..5 {
            w.webhook_to(&format!("hook {i}"), URL).await;
        }
        let (mut all, pages) = collect_pages(&w, &team_path("webhooks"), &w.admin, 2, "name").await;
        all.sort();
        assert_eq!(all, vec!["hook 0", "hook 1", "hook 2", "hook 3", "hook 4"]);
        assert!(pages >= 3);
    }
}

// ---- the test request -------------------------------------------------------------------------

per_backend! {
    async fn the_test_request_is_signed_with_every_header_of_the_contract(backend) {
        let w = World::new(backend).await;
        let server = receiver(200, "thanks").await;
        w.secret("TOKEN", "bearer-value").await;
        w.secret("HMAC_KEY", "hmac-value").await;
        let created = w.webhook(json!({"name": "deploy", "url": format!("{}/hook", server.uri()),
                                       "access_token_secret": "TOKEN", "secret": "HMAC_KEY"})).await;
        let a = w.post(&team_path(&format!("webhooks/{}/test", id_of(&created))), &w.admin, &json!({})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["ok"], true);
        assert_eq!(a.body["status"], 200);
        assert_eq!(a.body["body"], "thanks");
        assert_eq!(a.body["error"], Value::Null);
        assert!(a.body["duration_ms"].is_u64());

        let request = only_request(&server).await;
        assert_eq!(header(&request, "content-type"), "application/json");
        assert_eq!(header(&request, "authorization"), "Bearer bearer-value");
        assert_eq!(header(&request, "x-wandb-signature"), wandb_signature(b"hmac-value", &request.body));
        let id = header(&request, "webhook-id");
        assert!(id.starts_with("msg_"), "{id}");
        let timestamp: i64 = header(&request, "webhook-timestamp").parse().unwrap();
        let signing = SigningSecret::parse(created["signing_secret"].as_str().unwrap()).unwrap();
        assert!(verify_standard_webhooks(&signing, id, timestamp, &request.body, header(&request, "webhook-signature")));
        assert!(header(&request, "user-agent").starts_with("automations/"));
    }
}

per_backend! {
    async fn the_test_request_without_secrets_has_no_auth_or_wandb_signature(backend) {
        let w = World::new(backend).await;
        let server = receiver(204, "").await;
        let id = w.webhook_to("plain", &server.uri()).await;
        let a = w.post(&team_path(&format!("webhooks/{id}/test")), &w.admin, &json!(null)).await;
        assert_eq!(a.body["ok"], true, "{}", a.text);
        let request = only_request(&server).await;
        assert!(request.headers.get("authorization").is_none());
        assert!(request.headers.get("x-wandb-signature").is_none());
        assert!(request.headers.get("webhook-signature").is_some());
    }
}

per_backend! {
    async fn the_test_request_without_a_payload_sends_a_small_test_body(backend) {
        let w = World::new(backend).await;
        let server = receiver(200, "ok").await;
        let id = w.webhook_to("plain", &server.uri()).await;
        let a = w.app.call(reqwest::Method::POST, &team_path(&format!("webhooks/{id}/test")), Some(&w.admin), None).await;
        assert_eq!(a.body["ok"], true, "{}", a.text);
        let body: Value = only_request(&server).await.body_json().unwrap();
        assert_eq!(body["test"], true);
        assert_eq!(body["entity_name"], TEAM);
        assert_eq!(body["webhook_id"], json!(id));
    }
}

per_backend! {
    async fn the_test_payload_is_rendered_against_a_sample_event_with_secrets(backend) {
        let w = World::new(backend).await;
        let server = receiver(200, "ok").await;
        w.secret("TOKEN", "bearer-value").await;
        w.secret("HMAC_KEY", "hmac-value").await;
        let id = id_of(&w.webhook(json!({"name": "deploy", "url": server.uri(),
                                         "access_token_secret": "TOKEN", "secret": "HMAC_KEY"})).await);
        let payload = json!({"event_type": "${event_type}", "team": "${entity_name}",
                             "version": "${artifact_version_string}", "auth": "${ACCESS_TOKEN}",
                             "key": "$HMAC_KEY", "price": "$5", "n": 3});
        let a = w.post(&team_path(&format!("webhooks/{id}/test")), &w.admin, &json!({"payload": payload})).await;
        assert_eq!(a.body["ok"], true, "{}", a.text);
        let body: Value = only_request(&server).await.body_json().unwrap();
        assert_eq!(body["event_type"], "ADD_ARTIFACT_ALIAS");
        assert_eq!(body["team"], TEAM);
        assert!(body["version"].as_str().unwrap().starts_with(&format!("{TEAM}/")));
        assert_eq!(body["auth"], "bearer-value");
        assert_eq!(body["key"], "hmac-value");
        assert_eq!(body["price"], "$5");
        assert_eq!(body["n"], 3);
    }
}

per_backend! {
    async fn a_test_payload_with_an_unknown_variable_is_refused_at_its_path(backend) {
        let w = World::new(backend).await;
        let id = w.webhook_to("deploy", URL).await;
        let payload = json!({"blocks": [{"text": "${nope}"}]});
        let a = w.post(&team_path(&format!("webhooks/{id}/test")), &w.admin, &json!({"payload": payload})).await;
        assert_invalid(&a, "payload.blocks[0].text");
    }
}

per_backend! {
    async fn the_test_request_reports_a_failing_receiver(backend) {
        let w = World::new(backend).await;
        let server = receiver(500, "boom").await;
        let id = w.webhook_to("deploy", &server.uri()).await;
        let a = w.post(&team_path(&format!("webhooks/{id}/test")), &w.admin, &json!({})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["ok"], false);
        assert_eq!(a.body["status"], 500);
        assert_eq!(a.body["body"], "boom");
        assert!(a.body["error"].is_string());
    }
}

per_backend! {
    async fn the_test_request_goes_through_the_ssrf_guard(backend) {
        let app = TestApp::spawn_with(backend, |c| {
            c.allowed_networks = automations::delivery::ssrf::AllowedNetworks::none();
        })
        .await;
        let w = World::from_app(app).await;
        let server = receiver(200, "ok").await;
        let id = w.webhook_to("internal", &server.uri()).await;
        let a = w.post(&team_path(&format!("webhooks/{id}/test")), &w.admin, &json!({})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["ok"], false);
        assert_eq!(a.body["status"], Value::Null);
        assert!(a.body["error"].as_str().unwrap().starts_with("not sent: "), "{}", a.text);
        assert!(server.received_requests().await.unwrap().is_empty());
    }
}

per_backend! {
    async fn a_rotated_access_token_is_used_by_the_next_request_at_once(backend) {
        let w = World::new(backend).await;
        let server = receiver(200, "ok").await;
        w.secret("TOKEN", "old-token").await;
        let id = id_of(&w.webhook(json!({"name": "deploy", "url": server.uri(), "access_token_secret": "TOKEN"})).await);
        let test = team_path(&format!("webhooks/{id}/test"));
        w.post(&test, &w.admin, &json!({})).await;
        w.put(&team_path("secrets/TOKEN"), &w.admin, &json!({"value": "new-token"})).await;
        w.post(&test, &w.admin, &json!({})).await;
        let requests = server.received_requests().await.unwrap();
        assert_eq!(header(&requests[0], "authorization"), "Bearer old-token");
        assert_eq!(header(&requests[1], "authorization"), "Bearer new-token");
    }
}

per_backend! {
    async fn requests_after_a_signing_secret_rotation_are_signed_with_the_new_key(backend) {
        let w = World::new(backend).await;
        let server = receiver(200, "ok").await;
        let id = w.webhook_to("deploy", &server.uri()).await;
        let rotated = w.post(&team_path(&format!("webhooks/{id}/rotate-signing-secret")), &w.admin, &json!(null)).await;
        w.post(&team_path(&format!("webhooks/{id}/test")), &w.admin, &json!({})).await;
        let request = only_request(&server).await;
        let signing = SigningSecret::parse(rotated.body["signing_secret"].as_str().unwrap()).unwrap();
        let timestamp: i64 = header(&request, "webhook-timestamp").parse().unwrap();
        let (id, signature) = (header(&request, "webhook-id"), header(&request, "webhook-signature"));
        assert!(verify_standard_webhooks(&signing, id, timestamp, &request.body, signature));
    }
}
