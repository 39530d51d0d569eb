//! The README tour as code.

use std::time::{Duration, Instant};

use automations::delivery::signature::{SigningSecret, verify_standard_webhooks, wandb_signature};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common::process::LocalProcess;

pub struct Tour {
    pub process: LocalProcess,
    pub receiver: MockServer,
    client: reqwest::Client,
    token: String,
    sqs: Option<(aws_sdk_sqs::Client, String)>,
}

pub struct Ids {
    pub automation: String,
    pub signing_secret: String,
}

impl Tour {
    async fn start(process: LocalProcess, sqs: Option<(aws_sdk_sqs::Client, String)>) -> Tour {
        let receiver = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&receiver).await;
        let token = process.admin_token.clone();
        Tour { process, receiver, client: reqwest::Client::new(), token, sqs }
    }

    pub async fn start_sqlite() -> Tour {
        Self::start(LocalProcess::start(&[], &[]), None).await
    }

    /// `--backend aws --create-resources` on the moto server of `infra/test.sh`.
    pub async fn start_aws() -> Tour {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run ./infra/test.sh");
        let base = crate::common::stores::unique("e2e");
        let envs = [
            ("TABLE_NAME", base.clone()),
            ("EVENTS_QUEUE_URL", format!("{endpoint}/123456789012/{base}-events")),
            ("DELIVERIES_QUEUE_URL", format!("{endpoint}/123456789012/{base}-deliveries")),
            ("SECRETS_PREFIX", format!("e2e/{base}")),
        ];
        let process = LocalProcess::start(&["--backend", "aws", "--create-resources"], &envs);
        let sdk = automations::backends::aws::load_sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let url = sqs.get_queue_url().queue_name(format!("{base}-events")).send().await.expect("queue url");
        let url = url.queue_url().expect("url").to_owned();
        Self::start(process, Some((sqs, url))).await
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, format!("{}{path}", self.process.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(method, path, Some(body)).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// Team, user, secret, webhook and automation, as in the README tour.
    pub async fn configure(&self) -> Ids {
        self.ok("POST", "/v1/teams", json!({"name": "ml-team"})).await;
        let user = self.ok("POST", "/v1/users", json!({"name": "alice"})).await;
        assert!(user["token"].as_str().is_some_and(|t| !t.is_empty()));
        self.ok("PUT", "/v1/teams/ml-team/members/alice", json!({"role": "admin"})).await;
        self.ok("POST", "/v1/teams/ml-team/secrets", json!({"name": "DEPLOY_KEY", "value": "s3cr3t-canary"})).await;
        let webhook = self
            .ok(
                "POST",
                "/v1/teams/ml-team/webhooks",
                json!({"name": "deploy", "url": format!("{}/hook", self.receiver.uri()), "secret": "DEPLOY_KEY"}),
            )
            .await;
        let webhook_id = webhook["id"].as_str().expect("webhook id").to_owned();
        let automation = self
            .ok(
                "POST",
                "/v1/teams/ml-team/automations",
                json!({
                    "name": "deploy on production",
                    "scope": {"type": "registry", "registry": "models"},
                    "event": {"type": "ADD_ARTIFACT_ALIAS", "alias_regex": "^production$"},
                    "action": {"type": "webhook", "webhook_id": webhook_id,
                               "payload": {"version": "${artifact_version_string}", "by": "${event_author}", "key": "$DEPLOY_KEY"}}
                }),
            )
            .await;
        Ids {
            automation: automation["id"].as_str().expect("automation id").to_owned(),
            signing_secret: webhook["signing_secret"].as_str().expect("signing secret").to_owned(),
        }
    }

    pub async fn post_event(&self, id: &str) {
        let answer = self
            .ok(
                "POST",
                "/v1/events",
                json!({"id": id, "type": "ADD_ARTIFACT_ALIAS", "team": "ml-team", "project": "wandb-registry-models",
                       "author": "alice", "artifact": {"collection": "churn-model", "version": "v7"}, "alias": "production"}),
            )
            .await;
        assert_eq!(answer["accepted"], 1, "{answer}");
    }

    pub async fn send_event_to_sqs(&self, event: Value) {
        let (sqs, url) = self.sqs.as_ref().expect("an AWS tour");
        sqs.send_message().queue_url(url).message_body(event.to_string()).send().await.expect("send to SQS");
    }

    /// Polls the automation's history until its newest execution has `status`; returns its detail.
    pub async fn wait_for_status(&self, automation: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, list) =
                self.call("GET", &format!("/v1/teams/ml-team/automations/{automation}/executions"), None).await;
            if let Some(first) = list["items"].as_array().and_then(|i| i.first())
                && first["status"] == status
            {
                let id = first["id"].as_str().expect("id");
                return self.call("GET", &format!("/v1/teams/ml-team/executions/{id}"), None).await.1;
            }
            assert!(Instant::now() < deadline, "no execution reached {status}: {list}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub trait RequestExt {
    fn header_str(&self, name: &str) -> String;
    fn json_body(&self) -> Value;
}

impl RequestExt for Request {
    fn header_str(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

pub async fn wait_for_request(receiver: &MockServer, count: usize, limit: Duration) -> Request {
    let deadline = Instant::now() + limit;
    loop {
        let got = receiver.received_requests().await.unwrap_or_default();
        if got.len() >= count {
            return got[count - 1].clone();
        }
        assert!(Instant::now() < deadline, "{} of {count} requests arrived within {limit:?}", got.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Both signatures verify, and the payload secret was substituted.
pub fn assert_signed(request: &Request, ids: &Ids, secret_value: &str) {
    let secret = SigningSecret::parse(&ids.signing_secret).expect("signing secret");
    let ts: i64 = request.header_str("webhook-timestamp").parse().expect("timestamp");
    assert!(verify_standard_webhooks(
        &secret,
        &request.header_str("webhook-id"),
        ts,
        &request.body,
        &request.header_str("webhook-signature")
    ));
    assert_eq!(request.header_str("x-wandb-signature"), wandb_signature(secret_value.as_bytes(), &request.body));
    assert_eq!(request.json_body()["key"], secret_value);
    assert!(request.header_str("webhook-id").starts_with("ex_"));
}
