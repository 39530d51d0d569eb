//! Set-up for the reliability suites: a receiver whose behaviour a test switches at run time
//! (accept, hold, fail at random, answer slowly), a listener that only counts connections, the
//! `automations` process driven over its API, and the figures line each suite prints.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::common::process::LocalProcess;

pub const TEAM: &str = "ml-team";

/// Prints the figures of one suite as one line; `infra/reliability.sh` collects these lines.
pub fn report(suite: &str, figures: &[(&str, &dyn Display)]) {
    let parts: Vec<String> = figures.iter().map(|(name, value)| format!("{name}={value}")).collect();
    println!("reliability-figures: suite={suite} {}", parts.join(" "));
}

// ---- receiver -------------------------------------------------------------------------------

/// What the receiver does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// 200 at once.
    Accept,
    /// Keeps each request open until the behaviour changes, then answers as the new one says.
    Hold,
    /// 500 for `percent` % of requests, chosen at random; 200 for the rest.
    FailRandomly { percent: u64 },
    /// 200 after `Duration`.
    Slow(Duration),
    /// Answers this status with the request's Authorization header and body as its own body:
    /// a receiver that shows back whatever secret it was sent.
    Echo(u16),
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub body: Value,
    pub status: u16,
}

struct ReceiverState {
    behaviour: watch::Sender<Behaviour>,
    arrived: AtomicUsize,
    /// The webhook-id of every request, as it arrives (held ones included).
    arrivals: Mutex<Vec<String>>,
    received: Mutex<Vec<Received>>,
    /// xorshift state: random failures without another dependency.
    rng: Mutex<u64>,
}

/// A webhook receiver on 127.0.0.1.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        Self::start_on(0, behaviour).await
    }

    /// Starts on `port` (0 = any): a receiver that was down comes back on the URL the webhook has.
    pub async fn start_on(port: u16, behaviour: Behaviour) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let state = Arc::new(ReceiverState {
            behaviour: watch::channel(behaviour).0,
            arrived: AtomicUsize::new(0),
            arrivals: Mutex::new(Vec::new()),
            received: Mutex::new(Vec::new()),
            rng: Mutex::new(0x9E37_79B9_7F4A_7C15),
        });
        let app = axum::Router::new().fallback(receive).with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state, server }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn set(&self, behaviour: Behaviour) {
        self.state.behaviour.send_replace(behaviour);
    }

    /// Requests that arrived, answered or still held.
    pub fn arrived(&self) -> usize {
        self.state.arrived.load(Ordering::SeqCst)
    }

    /// The webhook-ids of the requests that arrived so far, answered or not.
    pub fn arrivals(&self) -> Vec<String> {
        self.state.arrivals.lock().expect("receiver").clone()
    }

    /// Requests answered so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("receiver").clone()
    }

    /// Requests answered so far, by `webhook-id`.
    pub fn by_webhook_id(&self) -> BTreeMap<String, Vec<Received>> {
        let mut ids: BTreeMap<String, Vec<Received>> = BTreeMap::new();
        for r in self.received() {
            ids.entry(r.webhook_id.clone()).or_default().push(r);
        }
        ids
    }

    /// Waits until at least `n` requests have arrived.
    pub async fn wait_arrived(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.arrived() < n {
            assert!(Instant::now() < deadline, "{} of {n} requests arrived within {limit:?}", self.arrived());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    let webhook_id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    state.arrivals.lock().expect("receiver").push(webhook_id.clone());
    state.arrived.fetch_add(1, Ordering::SeqCst);
    let mut behaviour = state.behaviour.subscribe();
    let now = *behaviour.borrow_and_update();
    let now = if now == Behaviour::Hold {
        match behaviour.wait_for(|b| *b != Behaviour::Hold).await {
            Ok(b) => *b,
            Err(_) => Behaviour::Accept,
        }
    } else {
        now
    };
    let mut answer = String::new();
    let status = match now {
        Behaviour::Accept | Behaviour::Hold => StatusCode::OK,
        Behaviour::Echo(status) => {
            let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
            answer = format!("{authorization} {}", String::from_utf8_lossy(&body));
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
        }
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK
        }
        Behaviour::FailRandomly { percent } => {
            let roll = {
                let mut x = state.rng.lock().expect("rng");
                *x ^= *x << 13;
                *x ^= *x >> 7;
                *x ^= *x << 17;
                *x % 100
            };
            if roll < percent { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
        }
    };
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.received.lock().expect("receiver").push(Received { webhook_id, body, status: status.as_u16() });
    (status, answer)
}

/// A port on 127.0.0.1 that nothing listens on (a receiver that is down).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

// ---- connection counter ---------------------------------------------------------------------

/// Listeners on 127.0.0.1 and [::1] (same port, where the machine has IPv6) that accept and
/// count connections, and answer nothing: an SSRF that got through would show up here.
pub struct ConnectionCounter {
    pub port: u16,
    count: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ConnectionCounter {
    pub async fn start() -> ConnectionCounter {
        let v4 = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind counter");
        let port = v4.local_addr().expect("counter address").port();
        let count = Arc::new(AtomicUsize::new(0));
        let mut listeners = vec![v4];
        if let Ok(v6) = tokio::net::TcpListener::bind(("::1", port)).await {
            listeners.push(v6);
        }
        let tasks = listeners
            .into_iter()
            .map(|listener| {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        count.fetch_add(1, Ordering::SeqCst);
                        drop(stream);
                    }
                })
            })
            .collect();
        ConnectionCounter { port, count, tasks }
    }

    pub fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for ConnectionCounter {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

// ---- the process, over its API --------------------------------------------------------------

/// The `automations` process and a client holding the system admin token.
pub struct Service {
    pub process: LocalProcess,
    client: reqwest::Client,
}

/// How the process is started (and restarted on the same data dir).
#[derive(Clone)]
pub struct Launch {
    pub data_dir: PathBuf,
    pub args: Vec<String>,
    pub envs: Vec<(&'static str, String)>,
    pub log: Option<PathBuf>,
}

impl Launch {
    pub fn sqlite(data_dir: &Path) -> Launch {
        Launch { data_dir: data_dir.to_owned(), args: vec![], envs: vec![], log: None }
    }

    /// `--backend aws --create-resources` on the moto server of `infra/test.sh`, with fresh names.
    pub fn aws(data_dir: &Path) -> Launch {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
        assert!(endpoint.starts_with("http://127.0.0.1"), "run under infra/test.sh (moto): {endpoint:?}");
        let base = crate::common::stores::unique("rel");
        Launch {
            data_dir: data_dir.to_owned(),
            args: vec!["--backend".into(), "aws".into(), "--create-resources".into()],
            envs: vec![
                ("TABLE_NAME", base.clone()),
                ("EVENTS_QUEUE_URL", format!("{endpoint}/123456789012/{base}-events")),
                ("DELIVERIES_QUEUE_URL", format!("{endpoint}/123456789012/{base}-deliveries")),
                ("SECRETS_PREFIX", format!("rel/{base}")),
            ],
            log: None,
        }
    }

    pub fn env(mut self, name: &'static str, value: impl Into<String>) -> Launch {
        self.envs.push((name, value.into()));
        self
    }

    pub fn start(&self) -> Service {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let process = LocalProcess::start_logging(self.data_dir.clone(), None, &args, &self.envs, self.log.as_deref());
        Service { process, client: reqwest::Client::new() }
    }
}

impl Service {
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.process.base))
            .bearer_auth(&self.process.admin_token)
            .timeout(Duration::from_secs(60));
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn ok(&self, method: &str, path: &str, body: &Value) -> Value {
        let (status, answer) = self.call(method, path, Some(body)).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// The team, and a webhook to `url`; returns the webhook id.
    pub async fn team_with_webhook(&self, url: &str) -> String {
        self.ok("POST", "/v1/teams", &json!({"name": TEAM})).await;
        let webhook =
            self.ok("POST", &format!("/v1/teams/{TEAM}/webhooks"), &json!({"name": "receiver", "url": url})).await;
        webhook["id"].as_str().expect("webhook id").to_owned()
    }

    /// An automation firing on the alias `alias` being added in the `models` registry; its
    /// payload names the event and the automation, so a receiver can tell executions apart.
    pub async fn alias_automation(&self, name: &str, alias: &str, webhook_id: &str) -> String {
        let spec = json!({
            "name": name,
            "scope": {"type": "registry", "registry": "models"},
            "event": {"type": "ADD_ARTIFACT_ALIAS", "alias_regex": format!("^{alias}$")},
            "action": {"type": "webhook", "webhook_id": webhook_id,
                       "payload": {"event": "${event_id}", "automation": "${automation_name}"}}
        });
        let automation = self.ok("POST", &format!("/v1/teams/{TEAM}/automations"), &spec).await;
        automation["id"].as_str().expect("automation id").to_owned()
    }

    /// Posts events in batches of at most 500; returns how many were accepted.
    pub async fn post_events(&self, events: &[Value]) -> u64 {
        let mut accepted = 0;
        for batch in events.chunks(500) {
            let answer = self.ok("POST", "/v1/events", &Value::Array(batch.to_vec())).await;
            accepted += answer["accepted"].as_u64().expect("accepted");
        }
        accepted
    }

    /// Every execution of an automation (the history, page by page).
    pub async fn executions(&self, automation: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/teams/{TEAM}/automations/{automation}/executions?limit=100");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = self.call("GET", &path, None).await;
            assert_eq!(status, 200, "{page}");
            all.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return all,
            }
        }
    }

    /// One execution with its attempts.
    pub async fn execution(&self, id: &str) -> Value {
        let (status, detail) = self.call("GET", &format!("/v1/teams/{TEAM}/executions/{id}"), None).await;
        assert_eq!(status, 200, "{detail}");
        detail
    }

    /// Waits until the automations have `expected` executions in all and none is pending;
    /// returns them. The deadline only turns a hang into a failure.
    pub async fn wait_settled(&self, automations: &[String], expected: usize, limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let mut all = Vec::new();
            for automation in automations {
                all.extend(self.executions(automation).await);
            }
            let pending = all.iter().filter(|e| e["status"] == "pending").count();
            if all.len() >= expected && pending == 0 {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "after {limit:?}: {} of {expected} executions, {pending} still pending",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// An ADD_ARTIFACT_ALIAS event in the `models` registry.
pub fn alias_event(id: &str, alias: &str) -> Value {
    json!({
        "id": id, "type": "ADD_ARTIFACT_ALIAS", "team": TEAM, "project": "wandb-registry-models",
        "author": "alice", "artifact": {"collection": "churn-model", "version": "v7"}, "alias": alias
    })
}

/// Executions counted by status.
pub fn by_status(executions: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in executions {
        *counts.entry(e["status"].as_str().unwrap_or("?").to_owned()).or_insert(0) += 1;
    }
    counts
}

/// The execution ids, as a set.
pub fn ids(executions: &[Value]) -> BTreeSet<String> {
    executions.iter().filter_map(|e| e["id"].as_str().map(str::to_owned)).collect()
}
