//! SSRF audit (DESIGN §7): with `AUTOMATIONS_ALLOWED_NETWORKS` empty, every way of writing an
//! address inside our own network is refused, through the webhook test endpoint and through
//! delivery, with a reason that names the address class, and nothing connects: listeners on
//! 127.0.0.1 and [::1] at the port every form names count zero connections.
//!
//! Before anything is sent, each form is put to the guard alone: a form the guard let through
//! fails the test there, so a broken guard can never send traffic to a private address that is
//! not ours.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use automations::delivery::ssrf::{AllowedNetworks, StaticResolver};
use reqwest::StatusCode;
use reqwest::Url;
use serde_json::json;

use super::support::*;
use crate::common::app::TestApp;
use crate::common::stores::Backend;

/// One address form: what it is, the URL, and the class the refusal must name.
struct Form {
    what: &'static str,
    url: String,
    class: &'static str,
}

const LOOPBACK: &str = "loopback";
const PRIVATE: &str = "private";
const LINK_LOCAL: &str = "link-local";
const CGNAT: &str = "shared address space (CGNAT)";
const UNIQUE_LOCAL: &str = "unique-local";
const UNSPECIFIED: &str = "unspecified";

fn forms(port: u16) -> Vec<Form> {
    let form = |what, host: &str, class| Form { what, url: format!("http://{host}:{port}/hook"), class };
    vec![
        form("dotted IPv4 loopback", "127.0.0.1", LOOPBACK),
        form("short loopback 127.1", "127.1", LOOPBACK),
        form("short loopback 127.0.1", "127.0.1", LOOPBACK),
        form("decimal IPv4", "2130706433", LOOPBACK),
        form("hex IPv4", "0x7f000001", LOOPBACK),
        form("dotted hex IPv4", "0x7f.0x0.0x0.0x1", LOOPBACK),
        form("mixed hex 0x7f.1", "0x7f.1", LOOPBACK),
        form("dotted octal IPv4", "0177.0.0.01", LOOPBACK),
        form("whole octal IPv4", "017700000001", LOOPBACK),
        form("percent-encoded IPv4", "%31%32%37.0.0.1", LOOPBACK),
        form("full-width digits", "\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}", LOOPBACK),
        form("user info before the host", "public.example@127.0.0.1", LOOPBACK),
        form("another loopback address", "127.255.255.254", LOOPBACK),
        form("0.0.0.0", "0.0.0.0", UNSPECIFIED),
        form("bare 0", "0", UNSPECIFIED),
        form("this network 0.1.2.3", "0.1.2.3", "\"this network\""),
        form("IPv6 loopback", "[::1]", LOOPBACK),
        form("IPv6 loopback written out", "[0:0:0:0:0:0:0:1]", LOOPBACK),
        form("IPv6 unspecified", "[::]", UNSPECIFIED),
        form("v4-mapped loopback", "[::ffff:127.0.0.1]", LOOPBACK),
        form("v4-mapped loopback in hex", "[::ffff:7f00:1]", LOOPBACK),
        form("v4-compatible loopback", "[::127.0.0.1]", LOOPBACK),
        form("6to4 of loopback", "[2002:7f00:1::1]", LOOPBACK),
        form("cloud metadata", "169.254.169.254", LINK_LOCAL),
        form("decimal metadata", "2852039166", LINK_LOCAL),
        form("hex metadata", "0xa9fea9fe", LINK_LOCAL),
        form("octal metadata", "0251.0376.0251.0376", LINK_LOCAL),
        form("v4-mapped metadata", "[::ffff:169.254.169.254]", LINK_LOCAL),
        form("NAT64 of metadata", "[64:ff9b::a9fe:a9fe]", LINK_LOCAL),
        form("IPv6 link-local", "[fe80::1]", LINK_LOCAL),
        form("private 10/8", "10.0.0.1", PRIVATE),
        form("short private 10.1", "10.1", PRIVATE),
        form("private 172.16/12", "172.16.5.4", PRIVATE),
        form("private 192.168/16", "192.168.1.1", PRIVATE),
        form("v4-mapped private", "[::ffff:10.0.0.1]", PRIVATE),
        form("CGNAT 100.64/10", "100.64.0.1", CGNAT),
        form("CGNAT top", "100.127.255.254", CGNAT),
        form("unique-local fd00::/8", "[fd00::1]", UNIQUE_LOCAL),
        form("unique-local fc00::/8", "[fc00::1]", UNIQUE_LOCAL),
        form("IPv4 multicast", "224.0.0.1", "multicast"),
        form("IPv6 multicast", "[ff02::1]", "multicast"),
        form("broadcast", "255.255.255.255", "broadcast"),
        form("name resolving to loopback", "localhost", LOOPBACK),
        form("name with a trailing dot, upper case", "LOCALHOST.", LOOPBACK),
        form("name resolving to a private address", "internal.example", PRIVATE),
        form("name resolving to the metadata address", "metadata.example", LINK_LOCAL),
        form("name resolving to CGNAT", "carrier.example", CGNAT),
        form("name resolving to unique-local", "ula.example", UNIQUE_LOCAL),
        form("name resolving to a v4-mapped private address", "mapped.example", PRIVATE),
        form("name resolving to several private addresses", "multi.example", PRIVATE),
    ]
}

/// The names the forms use; anything else fails to resolve (no public name is ever looked up).
fn resolver() -> StaticResolver {
    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    StaticResolver::new()
        .with("localhost", [ip("127.0.0.1"), ip("::1")])
        .with("internal.example", [ip("10.1.2.3")])
        .with("metadata.example", [ip("169.254.169.254")])
        .with("carrier.example", [ip("100.100.1.1")])
        .with("ula.example", [ip("fd12:3456::1")])
        .with("mapped.example", [ip("::ffff:192.168.0.10")])
        .with("multi.example", [ip("10.0.0.7"), ip("172.20.0.1"), ip("192.168.9.9")])
}

async fn audit_app() -> (TestApp, String) {
    let t = TestApp::spawn_with_resolver(
        Backend::Sqlite,
        |c| c.allowed_networks = AllowedNetworks::none(),
        Arc::new(resolver()),
    )
    .await;
    let admin = t.seed_team_with_admin(TEAM, "alice").await;
    (t, admin)
}

/// The guard alone refuses every form: the interlock that keeps a broken guard off the network.
async fn assert_guard_refuses(t: &TestApp, forms: &[Form]) {
    for form in forms {
        let url = Url::parse(&form.url).unwrap_or_else(|e| panic!("{}: {} does not parse: {e}", form.what, form.url));
        match t.app.sender.guard().check(&url).await {
            Err(e) if e.is_refusal() => {
                assert!(e.to_string().contains(form.class), "{}: refused as {e}, expected {}", form.what, form.class)
            }
            other => panic!("{} ({}) is not refused by the guard: {other:?}", form.what, form.url),
        }
    }
}

async fn create_webhook(t: &TestApp, admin: &str, name: &str, url: &str) -> String {
    let answer = t.post(&format!("/v1/teams/{TEAM}/webhooks"), admin, &json!({"name": name, "url": url})).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{url}: {}", answer.text);
    answer.body["id"].as_str().expect("webhook id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_private_address_form_is_reached_by_the_webhook_test_or_by_delivery() {
    let counter = ConnectionCounter::start().await;
    let (t, admin) = audit_app().await;
    let forms = forms(counter.port);
    assert_guard_refuses(&t, &forms).await;

    let mut webhooks = Vec::new();
    for (i, form) in forms.iter().enumerate() {
        let id = create_webhook(&t, &admin, &format!("ssrf {i}"), &form.url).await;
        let test = t.post(&format!("/v1/teams/{TEAM}/webhooks/{id}/test"), &admin, &json!({})).await;
        assert_eq!(test.status, StatusCode::OK, "{}: {}", form.what, test.text);
        assert_eq!(test.body["ok"], false, "{}: {}", form.what, test.text);
        assert!(test.body["status"].is_null(), "{}: an answer came back: {}", form.what, test.text);
        let error = test.body["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("not sent: ") && error.contains(form.class), "{}: {error}", form.what);
        webhooks.push(id);
    }

    let mut executions = Vec::new();
    for (i, id) in webhooks.iter().enumerate() {
        let automation = seed::webhook_automation(&t.app, &format!("ssrf {i}"), id).await;
        executions.push(seed::pending_execution(&t.app, &automation).await);
    }
    seed::start_delivery_worker(&t);
    for (form, execution) in forms.iter().zip(&executions) {
        let done = seed::wait_finished(&t.app, execution).await;
        assert_eq!(done.status, automations::domain::execution::ExecutionStatus::Failed, "{}", form.what);
        assert_eq!(done.attempts.len(), 1, "{}: a refusal is final", form.what);
        let error = done.attempts[0].error.as_deref().unwrap_or_default();
        assert!(error.starts_with("not sent: ") && error.contains(form.class), "{}: {error}", form.what);
        let reason = done.reason.as_deref().unwrap_or_default();
        assert!(reason.contains(form.class), "{}: the execution's reason is {reason:?}", form.what);
    }

    assert_eq!(counter.connections(), 0, "a forbidden destination was connected to");
    report(
        "ssrf",
        &[
            ("forms", &forms.len()),
            ("refused_by_test_endpoint", &webhooks.len()),
            ("refused_by_delivery", &executions.len()),
            ("connections", &counter.connections()),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_private_address_is_never_followed() {
    let counter = ConnectionCounter::start().await;
    // The redirecting receiver itself must be reachable: only its one address is allowed.
    let redirector = redirector(&format!("http://127.0.0.1:{}/hook", counter.port)).await;
    let allowed = AllowedNetworks::parse(&format!("{}/32", redirector.ip())).expect("network");
    let t = TestApp::spawn_with_resolver(Backend::Sqlite, |c| c.allowed_networks = allowed, Arc::new(resolver())).await;
    let admin = t.seed_team_with_admin(TEAM, "alice").await;
    let id = create_webhook(&t, &admin, "redirects", &format!("http://{redirector}/hook")).await;

    let test = t.post(&format!("/v1/teams/{TEAM}/webhooks/{id}/test"), &admin, &json!({})).await;
    assert_eq!(test.body["ok"], false, "{}", test.text);
    assert_eq!(test.body["status"], 307, "{}", test.text);
    assert!(test.body["error"].as_str().unwrap_or_default().contains("redirect not followed"), "{}", test.text);

    let automation = seed::webhook_automation(&t.app, "redirects", &id).await;
    let execution = seed::pending_execution(&t.app, &automation).await;
    seed::start_delivery_worker(&t);
    let done = seed::wait_finished(&t.app, &execution).await;
    assert_eq!(done.status, automations::domain::execution::ExecutionStatus::Failed);
    assert_eq!(done.attempts.len(), 1);
    assert!(done.reason.as_deref().unwrap_or_default().contains("redirect not followed"), "{:?}", done.reason);

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(counter.connections(), 0, "the redirect was followed");
}

/// A receiver on 127.0.0.2 that answers every request with a redirect to `target`.
async fn redirector(target: &str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
    let addr = listener.local_addr().expect("address");
    let target = target.to_owned();
    let app = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [("location", target)]) }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Automations and executions written the way ingest writes them, so the delivery path runs
/// on its own.
mod seed {
    use std::sync::Arc;
    use std::time::Duration;

    use automations::app::App;
    use automations::app::deliver::DeliverHandler;
    use automations::app::jobs::DeliveryTask;
    use automations::app::worker::{MessageHandler, run_local_worker};
    use automations::domain::automation::{Action, Automation, AutomationSpec, EventSpec, Scope};
    use automations::domain::execution::{Execution, ExecutionStatus};
    use automations::domain::names::{AutomationName, EventId, ObjectId, ProjectName, TeamName};
    use automations::ports::queue::OutgoingMessage;
    use serde_json::json;

    use super::TEAM;
    use crate::common::app::TestApp;

    fn team() -> TeamName {
        TeamName::parse(TEAM).expect("team")
    }

    pub async fn webhook_automation(app: &App, name: &str, webhook_id: &str) -> Automation {
        let now = app.clock.now();
        let automation = Automation {
            id: ObjectId::generate("au"),
            spec: AutomationSpec {
                name: AutomationName::parse(name).expect("name"),
                description: String::new(),
                enabled: true,
                cooldown_seconds: 86_400,
                scope: Scope::Registry { registry: ProjectName::parse("models").expect("registry") },
                event: EventSpec::AddArtifactAlias { alias_regex: "^production$".into(), filter: None },
                action: Action::Webhook { webhook_id: ObjectId::parse(webhook_id).expect("webhook id"), payload: None },
            },
            created_by: "alice".into(),
            created_at: now,
            updated_at: now,
        };
        app.repo.create_automation(&team(), &automation).await.expect("automation");
        automation
    }

    /// A pending execution with its first delivery job queued.
    pub async fn pending_execution(app: &App, automation: &Automation) -> ObjectId {
        let event_id = EventId::parse(format!("evt_{}", ulid::Ulid::generate())).expect("event id");
        let event = json!({
            "v": 1, "id": event_id.as_str(), "type": "ADD_ARTIFACT_ALIAS", "time": "2026-11-23T10:00:00Z",
            "team": TEAM, "project": "wandb-registry-models", "author": "alice",
            "artifact": {"collection": "churn-model", "version": "v7"}, "alias": "production"
        });
        let now = app.clock.now();
        let execution =
            Execution::pending(team(), event_id, automation.id.clone(), "ADD_ARTIFACT_ALIAS", event, None, now);
        assert!(app.repo.create_execution(&execution).await.expect("execution"));
        let job = DeliveryTask::Deliver { team: team(), execution_id: execution.id.clone(), attempt: 1 };
        app.deliveries.send(OutgoingMessage::new(job.to_body())).await.expect("enqueue");
        execution.id
    }

    pub fn start_delivery_worker(t: &TestApp) {
        let handler: Arc<dyn MessageHandler> = Arc::new(DeliverHandler::new(t.app.clone()));
        let (queue, dlq) = (t.app.deliveries.clone(), t.app.deliveries_dlq.clone());
        tokio::spawn(run_local_worker(queue, dlq, handler, 8, false, t.shutdown.subscribe()));
    }

    /// The execution with its attempts once it is no longer pending.
    pub async fn wait_finished(app: &App, id: &ObjectId) -> Execution {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(current) = app.repo.execution(id).await.expect("execution")
                && current.value.status != ExecutionStatus::Pending
            {
                let mut execution = current.value;
                execution.attempts = app.repo.attempts(id).await.expect("attempts");
                return execution;
            }
            assert!(tokio::time::Instant::now() < deadline, "execution {id} never finished");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
