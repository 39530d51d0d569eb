//! Helpers of the config API suite: a seeded team with one user per role, request shortcuts,
//! problem+json assertions and fixtures.

use automations::domain::names::{ObjectId, TeamName};
use automations::domain::secret::SecretValue;
use automations::domain::slack::{IntegrationState, SlackIntegration};
use automations::domain::team::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::app::{Answer, TestApp};
use crate::common::stores::Backend;

pub const TEAM: &str = "ml-team";
/// A secret value that must never appear in any answer.
pub const CANARY: &str = "canary-7f3a9c-never-shown";

/// The service with team `ml-team`: an admin, a member, a producer, a member who administers
/// the `models` registry, and an outsider who is admin of another team.
pub struct World {
    pub app: TestApp,
    pub system: String,
    pub admin: String,
    pub member: String,
    pub producer: String,
    pub registry_admin: String,
    pub outsider: String,
}

impl World {
    pub async fn new(backend: Backend) -> World {
        Self::from_app(TestApp::spawn(backend).await).await
    }

    pub async fn from_app(app: TestApp) -> World {
        let admin = app.seed_team_with_admin(TEAM, "alice").await;
        let member = app.seed_user("bob").await;
        app.seed_member(TEAM, "bob", Role::Member, &[]).await;
        let producer = app.seed_user("pat").await;
        app.seed_member(TEAM, "pat", Role::Producer, &[]).await;
        let registry_admin = app.seed_user("rita").await;
        app.seed_member(TEAM, "rita", Role::Member, &["models"]).await;
        let outsider = app.seed_team_with_admin("other-team", "olga").await;
        let system = app.admin_token.clone();
        World { app, system, admin, member, producer, registry_admin, outsider }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.app.get(path, token).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.app.post(path, token, body).await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.app.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.app.call(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.app.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a team secret as the admin.
    pub async fn secret(&self, name: &str, value: &str) {
        let a = self.post(&team_path("secrets"), &self.admin, &json!({"name": name, "value": value})).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }

    /// Creates a webhook as the admin; returns the answer's body (with `signing_secret`).
    pub async fn webhook(&self, body: Value) -> Value {
        let a = self.post(&team_path("webhooks"), &self.admin, &body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body
    }

    /// A webhook named `name` to `url`; returns its id.
    pub async fn webhook_to(&self, name: &str, url: &str) -> String {
        id_of(&self.webhook(json!({"name": name, "url": url})).await)
    }

    /// Creates an automation as `token`; returns the answer.
    pub async fn automation_as(&self, token: &str, body: &Value) -> Answer {
        self.post(&team_path("automations"), token, body).await
    }

    /// Creates an automation as the admin; returns its id.
    pub async fn automation(&self, body: &Value) -> String {
        let a = self.automation_as(&self.admin, body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        id_of(&a.body)
    }

    /// An active Slack integration stored as the OAuth flow would, with its secret; returns its id.
    pub async fn slack_integration(&self, channel: &str) -> String {
        let team = TeamName::parse(TEAM).unwrap();
        let integration = SlackIntegration {
            id: ObjectId::generate("si"),
            channel: format!("#{channel}"),
            channel_id: format!("C{}", channel.to_uppercase()),
            slack_team_id: "T0001".into(),
            slack_team_name: "Acme".into(),
            configuration_url: "https://acme.slack.com/services/B1".into(),
            state: IntegrationState::Active,
            broken_reason: None,
            installed_by: "alice".into(),
            created_at: self.app.app.clock.now(),
        };
        let stored = self.app.app.repo.upsert_slack(&team, &integration).await.unwrap();
        let credentials =
            json!({"incoming_webhook_url": format!("https://hooks.slack.test/{CANARY}"), "access_token": CANARY});
        let value = SecretValue::new(credentials.to_string()).unwrap();
        self.app.app.secrets.put(&slack_secret_path(stored.id.as_str()), &value).await.unwrap();
        stored.id.to_string()
    }

    /// A secret value straight from the store (to check what the API stored).
    pub async fn stored_secret(&self, path: &str) -> Option<String> {
        self.app.app.secrets.get(path).await.unwrap().map(|v| v.expose().to_owned())
    }
}

pub fn team_path(rest: &str) -> String {
    format!("/v1/teams/{TEAM}/{rest}")
}

pub fn slack_secret_path(id: &str) -> String {
    format!("{TEAM}/slack/{id}")
}

pub fn id_of(body: &Value) -> String {
    body["id"].as_str().unwrap_or_else(|| panic!("no id in {body}")).to_owned()
}

/// An error answer: status, problem+json content type and the RFC 9457 members.
pub fn assert_problem(a: &Answer, status: StatusCode) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.content_type, "application/problem+json", "{}", a.text);
    for member in ["type", "title", "detail"] {
        assert!(a.body[member].is_string(), "problem without {member}: {}", a.text);
    }
    assert_eq!(a.body["status"], json!(status.as_u16()), "{}", a.text);
    assert!(a.body["errors"].is_array(), "{}", a.text);
}

/// A 422 naming exactly `field` (among possibly others).
pub fn assert_invalid(a: &Answer, field: &str) {
    assert_problem(a, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = fields(a);
    assert!(fields.iter().any(|f| f == field), "expected a fault at {field:?}, got {fields:?}: {}", a.text);
}

pub fn fields(a: &Answer) -> Vec<String> {
    a.body["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The `name`s of a list answer's items, in order.
pub fn names(a: &Answer, key: &str) -> Vec<String> {
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.body["items"].as_array().unwrap().iter().map(|i| i[key].as_str().unwrap().to_owned()).collect()
}

/// Follows `next_cursor` with `limit` until the end; returns every item's `key` and the number
/// of pages.
pub async fn collect_pages(w: &World, path: &str, token: &str, limit: usize, key: &str) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let a = w.get(&url, token).await;
        let items = names(&a, key);
        assert!(items.len() <= limit, "page larger than limit: {}", a.text);
        out.extend(items);
        pages += 1;
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (out, pages),
        }
        assert!(pages < 100, "paging does not end");
    }
}

/// A valid automation with a no-op action at project scope.
pub fn no_op_automation(name: &str, project: &str) -> Value {
    json!({
        "name": name,
        "scope": {"type": "project", "project": project},
        "event": {"type": "RUN_STATE", "states": ["FAILED"]},
        "action": {"type": "no_op"}
    })
}

/// A valid artifact automation at `scope` with a no-op action.
pub fn artifact_automation(name: &str, scope: Value) -> Value {
    json!({
        "name": name,
        "scope": scope,
        "event": {"type": "ADD_ARTIFACT_ALIAS", "alias_regex": "^production$"},
        "action": {"type": "no_op"}
    })
}
