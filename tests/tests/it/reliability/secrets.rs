//! Secret audit (DESIGN §3, §7, §11): canary secret values go through every flow of the real
//! process — Slack app registration, secret create and rotate, webhook create, test, signing
//! secret rotation, preview, delivery with an access token and a payload secret to a receiver
//! that echoes them back, a Slack channel connected through OAuth and a Slack action, the
//! history, redeliver and error answers — with the process logging at trace level. No canary may appear
//! in any response body (except the one answer that hands a value out on purpose, such as the
//! signing secret) nor in any log line.

use std::time::{Duration, Instant};

use reqwest::header;
use serde_json::{Value, json};

use super::support::*;
use crate::slack::support::{ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, FakeSlack};

const TOKEN_VALUE: &str = "canary-access-token-4a9f07";
const ROTATED_TOKEN_VALUE: &str = "canary-rotated-token-b71c52";
const HMAC_VALUE: &str = "canary-payload-secret-e38d19";
/// Part of every incoming-webhook URL the fake Slack hands out.
const SLACK_URL_CANARY: &str = "hook-secret-canary";

/// Every answer the test got, with the values it may legitimately carry.
struct Audit {
    service: Service,
    client: reqwest::Client,
    responses: Vec<(String, String)>,
}

impl Audit {
    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.service.process.base))
            .bearer_auth(&self.service.process.admin_token);
        if let Some(body) = &body {
            req = req.json(body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        self.responses.push((format!("{method} {path} -> {status}"), text.clone()));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method, path, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// A GET as a browser makes it (no redirects followed, the flow cookie sent back).
    async fn browse(&mut self, url: &str, cookie: &mut Option<String>) -> (u16, Option<String>) {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let mut req = client.get(url);
        if let Some(c) = cookie.as_ref() {
            req = req.header(header::COOKIE, c.as_str());
        }
        let res = req.send().await.expect("browser request");
        let status = res.status().as_u16();
        let location = res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(set) = res.headers().get(header::SET_COOKIE).and_then(|v| v.to_str().ok()) {
            *cookie = Some(set.split(';').next().unwrap_or_default().to_owned());
        }
        let text = res.text().await.unwrap_or_default();
        self.responses.push((format!("GET {url} -> {status}"), text));
        (status, location)
    }

    async fn wait_for(&mut self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let detail = self.ok("GET", &format!("/v1/teams/{TEAM}/executions/{id}"), None).await;
            if done(&detail) {
                return detail;
            }
            assert!(Instant::now() < deadline, "execution {id} never got there: {detail}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_reaches_any_response_or_log_line_at_trace_level() {
    let dir = tempfile::tempdir().expect("data dir");
    let log = dir.path().join("trace.log");
    let fake = FakeSlack::start().await;
    let receiver = Receiver::start(Behaviour::Echo(500)).await;
    let mut launch = Launch::sqlite(dir.path())
        .env("RUST_LOG", "trace")
        .env("LOG_FORMAT", "json")
        .env("RETRY_SCHEDULE", "200ms,200ms")
        .env("SLACK_BASE_URL", fake.base.clone())
        .env("SLACK_API_BASE_URL", fake.base.clone());
    launch.log = Some(log.clone());
    let mut a = Audit { service: launch.start(), client: reqwest::Client::new(), responses: Vec::new() };
    let team = format!("/v1/teams/{TEAM}");
    // Values handed out on purpose once: checked in the logs, and in every other answer.
    let mut handed_out: Vec<String> = Vec::new();

    // The Slack app, a team, a user.
    a.ok("PUT", "/v1/admin/slack-app", Some(json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))).await;
    a.ok("GET", "/v1/admin/slack-app", None).await;
    a.ok("POST", "/v1/teams", Some(json!({"name": TEAM}))).await;
    let user = a.ok("POST", "/v1/users", Some(json!({"name": "alice"}))).await;
    handed_out.push(user["token"].as_str().expect("user token").to_owned());
    a.ok("PUT", &format!("{team}/members/alice"), Some(json!({"role": "admin"}))).await;

    // Secrets: create, list, rotate, and the errors that carry a value in their request.
    a.ok("POST", &format!("{team}/secrets"), Some(json!({"name": "TOKEN", "value": TOKEN_VALUE}))).await;
    a.ok("POST", &format!("{team}/secrets"), Some(json!({"name": "HMAC_KEY", "value": HMAC_VALUE}))).await;
    a.ok("GET", &format!("{team}/secrets"), None).await;
    let (status, _) =
        a.call("POST", &format!("{team}/secrets"), Some(json!({"name": "TOKEN", "value": TOKEN_VALUE}))).await;
    assert_eq!(status, 409);
    let (status, _) =
        a.call("POST", &format!("{team}/secrets"), Some(json!({"name": "bad-name", "value": TOKEN_VALUE}))).await;
    assert_eq!(status, 422);
    let too_long = format!("{TOKEN_VALUE}{}", "x".repeat(70 * 1024));
    let (status, _) = a.call("POST", &format!("{team}/secrets"), Some(json!({"name": "BIG", "value": too_long}))).await;
    assert!(status == 413 || status == 422, "{status}");
    let (status, _) = a.call("PUT", &format!("{team}/secrets/NOPE"), Some(json!({"value": TOKEN_VALUE}))).await;
    assert_eq!(status, 404);
    let (status, _) = a
        .call(
            "POST",
            &format!("{team}/secrets"),
            Some(json!({"name": "X", "value": TOKEN_VALUE, "extra": TOKEN_VALUE})),
        )
        .await;
    assert_eq!(status, 400);
    a.ok("PUT", &format!("{team}/secrets/TOKEN"), Some(json!({"value": ROTATED_TOKEN_VALUE}))).await;

    // A webhook with both secrets; its signing secret, read and rotated.
    let webhook = a
        .ok(
            "POST",
            &format!("{team}/webhooks"),
            Some(json!({"name": "echo", "url": receiver.url(), "access_token_secret": "TOKEN", "secret": "HMAC_KEY"})),
        )
        .await;
    let webhook_id = webhook["id"].as_str().expect("webhook id").to_owned();
    handed_out.push(webhook["signing_secret"].as_str().expect("signing secret").to_owned());
    a.ok("GET", &format!("{team}/webhooks/{webhook_id}"), None).await;
    a.ok("GET", &format!("{team}/webhooks"), None).await;
    a.ok("PATCH", &format!("{team}/webhooks/{webhook_id}"), Some(json!({"name": "echo back"}))).await;
    let read = a.ok("GET", &format!("{team}/webhooks/{webhook_id}/signing-secret"), None).await;
    handed_out.push(read["signing_secret"].as_str().expect("signing secret").to_owned());
    let rotated = a.ok("POST", &format!("{team}/webhooks/{webhook_id}/rotate-signing-secret"), None).await;
    handed_out.push(rotated["signing_secret"].as_str().expect("signing secret").to_owned());
    let signing_answers = a.responses.len();

    // The webhook test, against a receiver that echoes what it got, and against nothing.
    let payload =
        json!({"text": "${artifact_collection_name} is ${alias}", "token": "${ACCESS_TOKEN}", "key": "$HMAC_KEY"});
    receiver.set(Behaviour::Echo(200));
    let test = a.ok("POST", &format!("{team}/webhooks/{webhook_id}/test"), Some(json!({"payload": payload}))).await;
    assert_eq!(test["ok"], true, "{test}");
    receiver.set(Behaviour::Echo(500));
    a.ok("POST", &format!("{team}/webhooks/{webhook_id}/test"), Some(json!({"payload": payload}))).await;
    let closed = a
        .ok("POST", &format!("{team}/webhooks"), Some(json!({"name": "nowhere", "url": format!("http://127.0.0.1:{}/hook", closed_port()), "access_token_secret": "TOKEN"})))
        .await;
    let closed_id = closed["id"].as_str().expect("webhook id").to_owned();
    a.ok("POST", &format!("{team}/webhooks/{closed_id}/test"), Some(json!({"payload": payload}))).await;

    // A Slack channel connected through OAuth, as a browser does it.
    let install = a.ok("POST", &format!("{team}/slack-integrations/install"), Some(json!({}))).await;
    let mut cookie = None;
    let (_, authorize) = a.browse(install["url"].as_str().expect("install url"), &mut cookie).await;
    let (_, callback) = a.browse(&authorize.expect("to Slack"), &mut cookie).await;
    let callback = callback.expect("back to the service");
    let (status, _) = a.browse(&callback, &mut cookie.clone()).await;
    assert_eq!(status, 200);
    let (status, _) = a.browse(&callback, &mut cookie).await;
    assert_eq!(status, 400, "a replayed callback is refused");
    let integrations = a.ok("GET", &format!("{team}/slack-integrations"), None).await;
    let integration_id = integrations["items"][0]["id"].as_str().expect("integration id").to_owned();
    a.ok("GET", &format!("{team}/slack-integrations/{integration_id}"), None).await;

    // Automations: a webhook action with both secrets, a Slack action.
    let scope = json!({"type": "registry", "registry": "models"});
    let event_spec = json!({"type": "ADD_ARTIFACT_ALIAS", "alias_regex": "^production$"});
    let hook_automation = a
        .ok(
            "POST",
            &format!("{team}/automations"),
            Some(json!({"name": "echo", "scope": scope, "event": event_spec,
            "action": {"type": "webhook", "webhook_id": webhook_id, "payload": payload}})),
        )
        .await;
    let slack_automation = a
        .ok("POST", &format!("{team}/automations"), Some(json!({"name": "to slack", "scope": scope, "event": event_spec,
            "action": {"type": "slack", "integration_id": integration_id, "title": "${alias}", "message": "v ${artifact_version}", "severity": "INFO"}})))
        .await;
    let automations = [
        hook_automation["id"].as_str().expect("id").to_owned(),
        slack_automation["id"].as_str().expect("id").to_owned(),
    ];
    a.ok("GET", &format!("{team}/automations"), None).await;
    for automation in &automations {
        let preview = a
            .ok(
                "POST",
                &format!("{team}/automations/{automation}/preview"),
                Some(json!({"event": alias_event("evt-preview", "production")})),
            )
            .await;
        assert_eq!(preview["matches"], true, "{preview}");
    }

    // An event: the webhook is answered 500 (echoing the secrets) then 200; Slack gets its message.
    a.ok("POST", "/v1/events", Some(alias_event("evt-canary-1", "production"))).await;
    receiver.wait_arrived(3, Duration::from_secs(60)).await;
    receiver.set(Behaviour::Echo(200));
    let mut execution_ids = Vec::new();
    for automation in &automations {
        let deadline = Instant::now() + Duration::from_secs(60);
        let id = loop {
            let list = a.ok("GET", &format!("{team}/automations/{automation}/executions"), None).await;
            if let Some(id) = list["items"][0]["id"].as_str() {
                break id.to_owned();
            }
            assert!(Instant::now() < deadline, "no execution of {automation}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        a.wait_for(&id, |e| e["status"] != "pending").await;
        execution_ids.push(id);
    }
    assert!(!fake.lock().messages.is_empty(), "Slack got the message");

    // Redeliver both, then the history again.
    for id in &execution_ids {
        a.ok("POST", &format!("{team}/executions/{id}/redeliver"), None).await;
        let detail = a.wait_for(id, |e| e["status"] != "pending").await;
        assert!(detail["attempts"].as_array().is_some_and(|at| !at.is_empty()));
        let (status, _) = a.call("POST", &format!("{team}/executions/{id}/redeliver"), None).await;
        assert!(status == 202 || status == 409, "{status}");
        a.wait_for(id, |e| e["status"] != "pending").await;
    }
    for automation in &automations {
        a.ok("GET", &format!("{team}/automations/{automation}/executions"), None).await;
    }
    let (status, _) = a.call("GET", &format!("{team}/executions/ex_00000000000000000000000000"), None).await;
    assert_eq!(status, 404);
    let (status, _) = a.call("DELETE", &format!("{team}/secrets/TOKEN"), None).await;
    assert_eq!(status, 409, "the webhooks still use it");

    // Stop the process so every log line is written, then scan.
    let (exit, _) = a.service.process.terminate();
    assert!(exit.success());
    let logs = std::fs::read_to_string(&log).expect("trace log");
    let log_lines = logs.lines().count();
    assert!(logs.contains("delivery attempt finished"), "the trace log is missing the deliveries");
    let level = |name: &str| logs.lines().filter(|l| l.contains(&format!("\"level\":\"{name}\""))).count();
    let (debug_lines, trace_lines) = (level("DEBUG"), level("TRACE"));
    assert!(debug_lines > 0, "nothing was logged at debug level");

    let slack_urls = fake.lock().webhook_urls.clone();
    assert!(slack_urls.iter().all(|u| u.contains(SLACK_URL_CANARY)));
    let always_secret = [TOKEN_VALUE, ROTATED_TOKEN_VALUE, HMAC_VALUE, CLIENT_SECRET, ACCESS_TOKEN, SLACK_URL_CANARY];
    for (what, body) in &a.responses {
        for canary in always_secret {
            assert!(!body.contains(canary), "{what} shows a secret value ({canary}): {body}");
        }
    }
    for (i, (what, body)) in a.responses.iter().enumerate() {
        for value in &handed_out {
            let core = value.trim_start_matches("whsec_");
            let allowed = what.starts_with("POST /v1/users ")
                || (i < signing_answers && what.contains("signing"))
                || what.starts_with(&format!("POST {team}/webhooks -> 201"));
            assert!(allowed || !body.contains(core), "{what} shows a handed-out value: {body}");
        }
    }
    for line in logs.lines() {
        for canary in always_secret.iter().copied().chain(handed_out.iter().map(|v| v.trim_start_matches("whsec_"))) {
            assert!(!line.contains(canary), "a log line shows a secret value ({canary}): {line}");
        }
        assert!(!line.contains(&a.service.process.admin_token), "a log line shows the admin token: {line}");
    }
    report(
        "secrets",
        &[
            ("responses_scanned", &a.responses.len()),
            ("log_lines_scanned", &log_lines),
            ("debug_lines", &debug_lines),
            ("trace_lines", &trace_lines),
            ("log_bytes", &logs.len()),
            ("canaries", &(always_secret.len() + handed_out.len() + 1)),
            ("occurrences", &0),
        ],
    );
}

/// The bug the audit found: the webhook test answered with the receiver's body as is, so a
/// receiver echoing its request showed the access token and payload secret to the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_test_masks_secret_values_a_receiver_echoes_back() {
    let t = crate::common::app::TestApp::spawn(crate::common::stores::Backend::Sqlite).await;
    let admin = t.seed_team_with_admin(TEAM, "alice").await;
    let receiver = Receiver::start(Behaviour::Echo(500)).await;
    let team = format!("/v1/teams/{TEAM}");
    t.post(&format!("{team}/secrets"), &admin, &json!({"name": "TOKEN", "value": TOKEN_VALUE})).await;
    t.post(&format!("{team}/secrets"), &admin, &json!({"name": "HMAC_KEY", "value": HMAC_VALUE})).await;
    let webhook = t
        .post(
            &format!("{team}/webhooks"),
            &admin,
            &json!({"name": "echo", "url": receiver.url(), "access_token_secret": "TOKEN", "secret": "HMAC_KEY"}),
        )
        .await;
    let id = webhook.body["id"].as_str().expect("webhook id");
    let payload = json!({"token": "${ACCESS_TOKEN}", "key": "$HMAC_KEY"});

    let test = t.post(&format!("{team}/webhooks/{id}/test"), &admin, &json!({"payload": payload})).await;

    assert_eq!(test.body["status"], 500, "{}", test.text);
    let body = test.body["body"].as_str().expect("the receiver's answer");
    assert!(body.starts_with("Bearer ***"), "{body}");
    assert!(!test.text.contains(TOKEN_VALUE) && !test.text.contains(HMAC_VALUE), "{}", test.text);
}
