//! Set-up for the delivery suite: a team with a webhook or a Slack integration, an automation,
//! executions written straight through `app.repo` (as ingest would), delivery jobs put on
//! `app.deliveries`, and the local delivery worker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use automations::app::App;
use automations::app::deliver::DeliverHandler;
use automations::app::jobs::DeliveryTask;
use automations::app::repo::keys::secret_path;
use automations::app::worker::{MessageHandler, Outcome, run_local_worker};
use automations::delivery::sender::Sender;
use automations::delivery::signature::SigningSecret;
use automations::delivery::ssrf::SsrfGuard;
use automations::domain::automation::{Action, Automation, AutomationSpec, EventSpec, Scope, Severity};
use automations::domain::execution::{Execution, ExecutionStatus};
use automations::domain::names::{AutomationName, EventId, ObjectId, ProjectName, SecretName, TeamName, WebhookName};
use automations::domain::secret::{SecretMeta, SecretValue};
use automations::domain::slack::{IntegrationState, SlackCredentials, SlackIntegration};
use automations::domain::team::Role;
use automations::domain::webhook::Webhook;
use automations::ports::queue::{OutgoingMessage, ReceivedMessage};
use serde_json::{Value, json};

use crate::common::app::TestApp;

pub const TEAM: &str = "ml-team";
/// Secret values no record, answer or log line may ever show.
pub const CANARY_TOKEN: &str = "canary-token-5d1e0b7f";
pub const CANARY_SECRET: &str = "canary-hmac-key-93ac61";
pub const CANARY_SLACK_PATH: &str = "/services/T0CANARY/B0CANARY/canaryslack7c2d";

/// The payload of the webhook automations here: a variable, the access token and the secret.
pub fn payload() -> Value {
    json!({"text": "${artifact_collection_name} is now ${alias}", "token": "${ACCESS_TOKEN}", "key": "$HMAC_KEY"})
}

/// A team with an admin and a member.
pub struct Team {
    pub name: TeamName,
    pub admin: String,
    pub member: String,
}

pub async fn seed_team(t: &TestApp) -> Team {
    let admin = t.seed_team_with_admin(TEAM, "alice").await;
    let member = t.seed_user("bob").await;
    t.seed_member(TEAM, "bob", Role::Member, &[]).await;
    Team { name: TeamName::parse(TEAM).unwrap(), admin, member }
}

async fn put_team_secret(app: &App, team: &TeamName, name: &str, value: &str) {
    let name = SecretName::parse(name).unwrap();
    app.secrets.put(&secret_path::team_secret(team, &name), &SecretValue::new(value).unwrap()).await.unwrap();
    let now = app.clock.now();
    app.repo.create_secret_meta(team, &SecretMeta { name, created_at: now, updated_at: now }).await.unwrap();
}

/// A webhook to `url` with the access token `TOKEN` and the payload secret `HMAC_KEY` (the
/// canaries), and its signing secret.
pub async fn seed_webhook(app: &App, team: &TeamName, url: &str) -> (Webhook, SigningSecret) {
    put_team_secret(app, team, "TOKEN", CANARY_TOKEN).await;
    put_team_secret(app, team, "HMAC_KEY", CANARY_SECRET).await;
    let now = app.clock.now();
    let webhook = Webhook {
        id: ObjectId::generate("wh"),
        name: WebhookName::parse("model registry hook").unwrap(),
        url: url.to_owned(),
        access_token_secret: Some(SecretName::parse("TOKEN").unwrap()),
        secret: Some(SecretName::parse("HMAC_KEY").unwrap()),
        created_at: now,
        updated_at: now,
    };
    app.repo.create_webhook(team, &webhook).await.unwrap();
    let signing = SigningSecret::generate();
    let path = secret_path::webhook_signing(team, &webhook.id);
    app.secrets.put(&path, &SecretValue::new(signing.expose()).unwrap()).await.unwrap();
    (webhook, signing)
}

/// A Slack integration whose incoming webhook is `base` + [`CANARY_SLACK_PATH`].
pub async fn seed_slack(app: &App, team: &TeamName, base: &str) -> SlackIntegration {
    let integration = SlackIntegration {
        id: ObjectId::generate("si"),
        channel: "#ml-alerts".into(),
        channel_id: "C0123".into(),
        slack_team_id: "T0123".into(),
        slack_team_name: "ML".into(),
        configuration_url: "https://slack.example/config".into(),
        state: IntegrationState::Active,
        broken_reason: None,
        installed_by: "alice".into(),
        created_at: app.clock.now(),
    };
    let integration = app.repo.upsert_slack(team, &integration).await.unwrap();
    let credentials = SlackCredentials {
        incoming_webhook_url: format!("{base}{CANARY_SLACK_PATH}"),
        access_token: "xoxb-canary-bot-token".into(),
    };
    let value = SecretValue::new(serde_json::to_string(&credentials).unwrap()).unwrap();
    app.secrets.put(&secret_path::slack(team, &integration.id), &value).await.unwrap();
    integration
}

pub fn webhook_action(webhook: &Webhook) -> Action {
    Action::Webhook { webhook_id: webhook.id.clone(), payload: Some(payload()) }
}

pub fn slack_action(integration: &SlackIntegration) -> Action {
    Action::Slack {
        integration_id: integration.id.clone(),
        title: "${artifact_collection_name} is ${alias}".into(),
        message: "Version ${artifact_version} of *${artifact_collection_name}* by ${event_author}".into(),
        severity: Severity::Warn,
    }
}

pub async fn seed_automation(app: &App, team: &TeamName, action: Action) -> Automation {
    let now = app.clock.now();
    let automation = Automation {
        id: ObjectId::generate("au"),
        spec: AutomationSpec {
            name: AutomationName::parse(format!("promote {}", ulid::Ulid::generate())).unwrap(),
            description: String::new(),
            enabled: true,
            cooldown_seconds: 86_400,
            scope: Scope::Registry { registry: ProjectName::parse("models").unwrap() },
            event: EventSpec::AddArtifactAlias { alias_regex: "^production$".into(), filter: None },
            action,
        },
        created_by: "alice".into(),
        created_at: now,
        updated_at: now,
    };
    app.repo.create_automation(team, &automation).await.unwrap();
    automation
}

/// A pending execution of `automation` for a fresh ADD_ARTIFACT_ALIAS event, as ingest makes it.
pub async fn seed_execution(app: &App, team: &TeamName, automation: &Automation) -> Execution {
    seed_execution_at(app, team, automation, app.clock.now()).await
}

/// The same, created at `created_at`.
pub async fn seed_execution_at(
    app: &App,
    team: &TeamName,
    automation: &Automation,
    created_at: jiff::Timestamp,
) -> Execution {
    let event_id = EventId::parse(format!("evt_{}", ulid::Ulid::generate())).unwrap();
    let event = json!({
        "v": 1, "id": event_id.as_str(), "type": "ADD_ARTIFACT_ALIAS", "time": "2026-11-23T10:00:00Z",
        "team": team.as_str(), "project": "wandb-registry-models", "author": "alice",
        "artifact": {"collection": "churn-model", "version": "v7", "type": "model",
                     "aliases": ["latest", "production"], "url": "https://wandb.example/a/churn-model/v7"},
        "alias": "production"
    });
    let now = created_at;
    let execution =
        Execution::pending(team.clone(), event_id, automation.id.clone(), "ADD_ARTIFACT_ALIAS", event, None, now);
    assert!(app.repo.create_execution(&execution).await.unwrap());
    execution
}

/// What ingest enqueues for a new execution: attempt 1.
pub fn first_job(execution: &Execution) -> DeliveryTask {
    DeliveryTask::Deliver { team: execution.team.clone(), execution_id: execution.id.clone(), attempt: 1 }
}

pub async fn enqueue(app: &App, task: &DeliveryTask) {
    app.deliveries.send(OutgoingMessage::new(task.to_body())).await.unwrap();
}

/// Runs the delivery worker of `app` until the test app shuts down.
pub fn start_worker(t: &TestApp, app: &App) {
    let handler: Arc<dyn MessageHandler> = Arc::new(DeliverHandler::new(app.clone()));
    let (queue, dlq) = (app.deliveries.clone(), app.deliveries_dlq.clone());
    tokio::spawn(run_local_worker(queue, dlq, handler, 4, false, t.shutdown.subscribe()));
}

/// `app` with a sender whose attempts time out after `timeout`.
pub fn with_send_timeout(app: &App, timeout: Duration) -> App {
    let guard = SsrfGuard::system(app.config.allowed_networks.clone());
    let sender = Sender::new(guard, timeout, automations::startup::USER_AGENT).unwrap();
    App { sender: Arc::new(sender), ..app.clone() }
}

/// Handles `task` once, as if the queue had handed it over, without a worker.
pub async fn handle_once(app: &App, task: &DeliveryTask) -> Outcome {
    let message = ReceivedMessage {
        id: ulid::Ulid::generate().to_string(),
        receipt: "receipt".into(),
        body: task.to_body(),
        receive_count: 1,
        attributes: BTreeMap::new(),
    };
    DeliverHandler::new(app.clone()).handle(&message).await
}

/// The execution with its attempts, once `done` holds for it. Waits on the worker, not on a
/// clock: the deadline only turns a hang into a failure.
pub async fn wait_for(app: &App, id: &ObjectId, done: impl Fn(&Execution) -> bool) -> Execution {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(current) = app.repo.execution(id).await.unwrap() {
            let mut execution = current.value;
            execution.attempts = app.repo.attempts(id).await.unwrap();
            if done(&execution) {
                return execution;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "execution {id} never reached the expected state");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The execution once it is no longer pending.
pub async fn wait_finished(app: &App, id: &ObjectId) -> Execution {
    wait_for(app, id, |e| e.status != ExecutionStatus::Pending).await
}

/// A header of a received request, as text.
pub fn header(request: &wiremock::Request, name: &str) -> String {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// A loopback address nothing listens on.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

/// Fails when `text` shows any secret value of this suite.
pub fn assert_no_secret(text: &str, extra: &[&str]) {
    for canary in [CANARY_TOKEN, CANARY_SECRET, "canaryslack7c2d", "xoxb-canary-bot-token"].iter().chain(extra) {
        assert!(!text.contains(canary), "a secret value ({canary}) leaked into: {text}");
    }
}
