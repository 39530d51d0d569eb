//! A fake Slack (authorize page, `oauth.v2.access`, incoming webhooks) and a browser that walks
//! the connect flow by hand: redirects not followed, the flow cookie carried like a browser
//! would (only to `/slack` paths of the service).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use automations::app::config::Config;
use automations::app::repo::keys::secret_path;
use automations::domain::names::TeamName;
use automations::domain::slack::{SlackCredentials, SlackIntegration};
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use reqwest::Url;
use serde_json::{Value, json};

use crate::common::app::TestApp;
use crate::common::stores::Backend;

pub const CLIENT_ID: &str = "1234567890.0987654321";
pub const CLIENT_SECRET: &str = "client-secret-canary-5f2e";
pub const ACCESS_TOKEN: &str = "xoxb-token-canary-77aa";
pub const TEAM: &str = "ml-team";

/// What the fake `oauth.v2.access` answers.
#[derive(Debug, Clone)]
pub enum AccessAnswer {
    /// `ok: true` with the channel the user picked.
    Ok,
    /// `ok: false` with this error code.
    Refuse(&'static str),
}

/// What the fake Slack saw and will answer.
#[derive(Debug)]
pub struct FakeSlackState {
    pub base: String,
    pub answer: AccessAnswer,
    /// Whether the user presses "Allow" on the authorize page.
    pub approve: bool,
    pub channel: String,
    pub channel_id: String,
    /// Query strings of the authorize page visits.
    pub authorize_visits: Vec<HashMap<String, String>>,
    /// Forms posted to `oauth.v2.access`.
    pub exchanges: Vec<HashMap<String, String>>,
    /// Codes issued and not yet exchanged.
    pub codes: Vec<String>,
    /// Incoming-webhook URLs handed out, in order.
    pub webhook_urls: Vec<String>,
    /// Messages posted to incoming webhooks: (path, body).
    pub messages: Vec<(String, Value)>,
}

#[derive(Clone)]
pub struct FakeSlack {
    pub base: String,
    pub state: Arc<Mutex<FakeSlackState>>,
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake slack");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(FakeSlackState {
            base: base.clone(),
            answer: AccessAnswer::Ok,
            approve: true,
            channel: "#alerts".into(),
            channel_id: "C0ALERTS".into(),
            authorize_visits: vec![],
            exchanges: vec![],
            codes: vec![],
            webhook_urls: vec![],
            messages: vec![],
        }));
        let router = Router::new()
            .route("/oauth/v2/authorize", get(authorize))
            .route("/api/oauth.v2.access", post(access))
            .route("/services/{*path}", post(incoming_webhook))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve fake slack");
        });
        FakeSlack { base, state }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, FakeSlackState> {
        self.state.lock().expect("fake slack state")
    }

    pub fn exchanges(&self) -> usize {
        self.lock().exchanges.len()
    }

    /// Points the service's Slack base URLs at this fake.
    pub fn configure(&self, config: &mut Config) {
        config.slack_base_url = self.base.clone();
        config.slack_api_base_url = self.base.clone();
    }
}

type Shared = State<Arc<Mutex<FakeSlackState>>>;

/// The user sees the consent page and presses Allow (or Cancel): Slack sends the browser back.
async fn authorize(State(state): Shared, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut s = state.lock().expect("state");
    s.authorize_visits.push(query.clone());
    let Some(mut back) = query.get("redirect_uri").and_then(|u| Url::parse(u).ok()) else {
        return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
    };
    let st = query.get("state").cloned().unwrap_or_default();
    if s.approve {
        let code = format!("code-{}", s.codes.len() + s.exchanges.len() + 1);
        s.codes.push(code.clone());
        back.query_pairs_mut().append_pair("code", &code).append_pair("state", &st);
    } else {
        back.query_pairs_mut().append_pair("error", "access_denied").append_pair("state", &st);
    }
    Redirect::to(back.as_str()).into_response()
}

/// `oauth.v2.access`: checks the client and the code like Slack does.
async fn access(State(state): Shared, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut s = state.lock().expect("state");
    s.exchanges.push(form.clone());
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return Json(json!({"ok": false, "error": "invalid_client_id"})).into_response();
    }
    let code = get("code");
    let Some(at) = s.codes.iter().position(|c| *c == code) else {
        return Json(json!({"ok": false, "error": "invalid_code"})).into_response();
    };
    s.codes.remove(at);
    if let AccessAnswer::Refuse(error) = s.answer {
        return Json(json!({"ok": false, "error": error})).into_response();
    }
    let url = format!("{}/services/T0ACME/B0{}/hook-secret-canary-{}", s.base, s.webhook_urls.len(), code);
    s.webhook_urls.push(url.clone());
    Json(json!({
        "ok": true,
        "app_id": "A0APP",
        "authed_user": {"id": "U0ALICE"},
        "scope": "incoming-webhook",
        "token_type": "bot",
        "access_token": ACCESS_TOKEN,
        "bot_user_id": "U0BOT",
        "team": {"id": "T0ACME", "name": "Acme <Research>"},
        "enterprise": null,
        "is_enterprise_install": false,
        "incoming_webhook": {
            "channel": s.channel,
            "channel_id": s.channel_id,
            "configuration_url": "https://acme.slack.com/services/B0CONF",
            "url": url,
        }
    }))
    .into_response()
}

async fn incoming_webhook(
    State(state): Shared,
    axum::extract::Path(path): axum::extract::Path<String>,
    Json(body): Json<Value>,
) -> Response {
    state.lock().expect("state").messages.push((path, body));
    ([(header::CONTENT_TYPE, "text/plain")], "ok").into_response()
}

/// An answer as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub content_type: String,
    pub text: String,
}

/// A browser: no automatic redirects, one cookie jar entry for the service's flow cookie.
pub struct Browser {
    client: reqwest::Client,
    /// The service's base URL: the cookie goes only to its `/slack` paths.
    service: String,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(t: &TestApp) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Browser { client, service: t.base.clone(), cookie: None }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let mut req = self.client.get(url);
        if let Some(cookie) = &self.cookie
            && url.starts_with(&format!("{}/slack", self.service))
        {
            req = req.header(header::COOKIE, cookie.as_str());
        }
        let res = req.send().await.expect("browser request");
        let header_text =
            |name: header::HeaderName| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let location = header_text(header::LOCATION);
        let set_cookie = header_text(header::SET_COOKIE);
        let content_type = header_text(header::CONTENT_TYPE).unwrap_or_default();
        if let Some(set) = &set_cookie {
            let pair = set.split(';').next().unwrap_or_default().trim().to_owned();
            let cleared = set.contains("Max-Age=0") || pair.ends_with('=');
            self.cookie = if cleared { None } else { Some(pair) };
        }
        let status = res.status();
        let text = res.text().await.expect("body");
        Page { status, location, set_cookie, content_type, text }
    }
}

/// A service wired to a fresh fake Slack, with the Slack app registered and a team whose admin
/// is `alice`. Returns the admin's token.
pub async fn spawn(backend: Backend) -> (TestApp, FakeSlack, String) {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> (TestApp, FakeSlack, String) {
    let fake = FakeSlack::start().await;
    let t = TestApp::spawn_with(backend, |c| {
        fake.configure(c);
        tweak(c);
    })
    .await;
    let admin = t.seed_team_with_admin(TEAM, "alice").await;
    register_app(&t).await;
    (t, fake, admin)
}

pub async fn register_app(t: &TestApp) {
    let res = t
        .call(
            reqwest::Method::PUT,
            "/v1/admin/slack-app",
            Some(&t.admin_token),
            Some(&json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
}

/// Asks for an install link as `token`; returns the URL.
pub async fn install_link(t: &TestApp, token: &str) -> String {
    let res = t.post(&format!("/v1/teams/{TEAM}/slack-integrations/install"), token, &json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.body["url"].as_str().expect("url").to_owned()
}

/// Opens the install link: the service answers with a redirect to Slack's authorize page.
pub async fn open_install_link(browser: &mut Browser, url: &str) -> String {
    let page = browser.get(url).await;
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.text);
    page.location.expect("redirect to Slack")
}

/// On Slack's authorize page the user answers; Slack sends the browser to the callback.
pub async fn answer_on_slack(browser: &mut Browser, authorize_url: &str) -> String {
    let page = browser.get(authorize_url).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "fake slack: {}", page.text);
    page.location.expect("redirect back to the service")
}

/// The whole flow up to the callback URL Slack sends the browser to (not yet visited).
pub async fn until_callback(t: &TestApp, browser: &mut Browser, token: &str) -> String {
    let link = install_link(t, token).await;
    let authorize = open_install_link(browser, &link).await;
    answer_on_slack(browser, &authorize).await
}

/// The whole flow, callback included.
pub async fn connect(t: &TestApp, browser: &mut Browser, token: &str) -> Page {
    let callback = until_callback(t, browser, token).await;
    browser.get(&callback).await
}

pub fn team() -> TeamName {
    TeamName::parse(TEAM).expect("team")
}

pub async fn integrations(t: &TestApp) -> Vec<SlackIntegration> {
    t.app.repo.slacks(&team(), 100, None).await.expect("list integrations").items
}

pub async fn credentials(t: &TestApp, integration: &SlackIntegration) -> Option<SlackCredentials> {
    let value = t.app.secrets.get(&secret_path::slack(&team(), &integration.id)).await.expect("secret store")?;
    Some(serde_json::from_str(value.expose()).expect("credentials JSON"))
}

/// A failed step stored no integration.
pub async fn assert_nothing_stored(t: &TestApp) {
    assert_eq!(integrations(t).await, vec![], "no integration may be stored");
}

/// A failure page: the status, HTML, and a headline the user can act on.
pub fn assert_page(page: &Page, status: StatusCode, says: &str) {
    assert_eq!(page.status, status, "{}", page.text);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.text.contains(says), "page should say {says:?}: {}", page.text);
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> HashMap<String, String> {
    Url::parse(url).expect("url").query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// `url` with query parameter `name` set to `value`.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> =
        parsed.query_pairs().filter(|(k, _)| k != name).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs).append_pair(name, value);
    parsed.into()
}

/// `url` without query parameter `name`.
pub fn without_param(url: &str, name: &str) -> String {
    let mut parsed = Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> =
        parsed.query_pairs().filter(|(k, _)| k != name).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.into()
}
