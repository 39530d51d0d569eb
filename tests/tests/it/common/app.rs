//! `TestApp`: the service on a fresh store, serving the local router on 127.0.0.1:0
//! (svix's `start_svix_server`, zero2prod's `spawn_app`).

use std::sync::Arc;

use automations::app::App;
use automations::app::auth::{generate_token, sha256_hex};
use automations::app::config::Config;
use automations::delivery::ssrf::{Resolver, SystemResolver};
use automations::domain::names::{ProjectName, TeamName, UserName};
use automations::domain::team::{Member, Role, Team, User};
use automations::ports::clock::{Clock, SystemClock};
use automations::startup::{build_app_with_resolver, sqlite_ports};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::stores::Backend;

pub struct TestApp {
    pub app: App,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub admin_token: String,
    pub client: reqwest::Client,
    /// Flip to true to stop workers a test started.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    _dir: Option<tempfile::TempDir>,
}

/// An answer: status, content type and the body as JSON (Null when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with a configuration adjusted by `tweak` (e.g. a short retry schedule).
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_with_resolver(backend, tweak, Arc::new(SystemResolver)).await
    }

    /// The same, with the SSRF guard resolving host names through `resolver`.
    pub async fn spawn_with_resolver(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        resolver: Arc<dyn Resolver>,
    ) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut config = Config::local(&base);
        config.retry = automations::delivery::retry::RetryPolicy::new(
            automations::delivery::retry::RetrySchedule::parse("1s,1s").expect("schedule"),
        );
        tweak(&mut config);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (app, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let ports = sqlite_ports(dir.path(), clock.clone(), &config).await.expect("sqlite ports");
                (build_app_with_resolver(ports, clock, config, resolver).expect("app"), Some(dir))
            }
            Backend::Aws => {
                let ports = super::stores::aws_ports(&config).await;
                (build_app_with_resolver(ports, clock, config, resolver).expect("app"), None)
            }
        };
        let admin_token = app.bootstrap_admin_token(None).await.expect("bootstrap").expect("new token");
        let router = automations::http::local_router(app.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        let (shutdown, _) = tokio::sync::watch::channel(false);
        TestApp { app, base, admin_token, client: reqwest::Client::new(), shutdown, _dir: dir }
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, content_type, body, text }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Creates a user straight in the store and returns their token.
    pub async fn seed_user(&self, name: &str) -> String {
        let token = generate_token().expect("token");
        let user = User { name: UserName::parse(name).expect("user name"), created_at: self.app.clock.now() };
        self.app.repo.create_user(&user, &sha256_hex(&token)).await.expect("create user");
        token
    }

    /// Creates a team straight in the store.
    pub async fn seed_team(&self, name: &str) {
        let team = Team { name: TeamName::parse(name).expect("team name"), created_at: self.app.clock.now() };
        self.app.repo.create_team(&team).await.expect("create team");
    }

    /// Gives `user` a role in `team`, optionally as admin of some registries.
    pub async fn seed_member(&self, team: &str, user: &str, role: Role, registries: &[&str]) {
        let member = Member {
            user: UserName::parse(user).expect("user"),
            role,
            registries: registries.iter().map(|r| ProjectName::parse(*r).expect("registry")).collect(),
        };
        self.app.repo.put_member(&TeamName::parse(team).expect("team"), &member).await.expect("member");
    }

    /// A team with one admin; returns the admin's token.
    pub async fn seed_team_with_admin(&self, team: &str, admin: &str) -> String {
        self.seed_team(team).await;
        let token = self.seed_user(admin).await;
        self.seed_member(team, admin, Role::Admin, &[]).await;
        token
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
