//! Store operations per event on AWS (moto): counting wrappers around the ports, the whole
//! path from `POST /v1/events` to the delivery record. Run twice, once where no automation
//! fires and once where each event fires one, so the cost splits into per event and per fired
//! automation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use automations::app::App;
use automations::app::config::Config;
use automations::domain::secret::SecretValue;
use automations::ports::clock::{Clock, SystemClock};
use automations::ports::error::StoreResult;
use automations::ports::queue::{MAX_BATCH, OutgoingMessage, Queue, ReceivedMessage};
use automations::ports::secrets::SecretStore;
use automations::ports::table::{Item, Key, Page, Query, Table, WriteOp};
use automations::startup::{AwsSettings, Ports, aws_ports, build_app, deliveries_max_receives};
use serde_json::{Value, json};

use crate::sink;

/// Counts per kind of item (the first part of its partition key: TEAM, EVENT, EXEC, RUN, …).
#[derive(Default)]
pub struct Counts {
    reads: Mutex<BTreeMap<String, u64>>,
    writes: Mutex<BTreeMap<String, u64>>,
    queue_calls: Mutex<BTreeMap<String, u64>>,
    secret_calls: AtomicU64,
}

fn kind(pk: &str) -> String {
    pk.split('#').next().unwrap_or_default().to_owned()
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: String, by: u64) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_default() += by;
    }
}

impl Counts {
    fn snapshot(&self) -> Value {
        let get = |m: &Mutex<BTreeMap<String, u64>>| json!(m.lock().map(|m| m.clone()).unwrap_or_default());
        json!({"reads": get(&self.reads), "writes": get(&self.writes), "queue_calls": get(&self.queue_calls),
               "secret_calls": self.secret_calls.load(Ordering::Relaxed)})
    }

    fn reset(&self) {
        for m in [&self.reads, &self.writes, &self.queue_calls] {
            if let Ok(mut m) = m.lock() {
                m.clear();
            }
        }
        self.secret_calls.store(0, Ordering::Relaxed);
    }

    fn writes_of(&self, kind: &str) -> u64 {
        self.writes.lock().ok().and_then(|m| m.get(kind).copied()).unwrap_or(0)
    }
}

struct CountingTable(Arc<dyn Table>, Arc<Counts>);

#[async_trait]
impl Table for CountingTable {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        bump(&self.1.reads, kind(&key.pk), 1);
        self.0.get(key).await
    }
    async fn put(&self, item: Item, condition: automations::ports::table::Condition) -> StoreResult<()> {
        bump(&self.1.writes, kind(&item.pk), 1);
        self.0.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: automations::ports::table::Condition) -> StoreResult<()> {
        bump(&self.1.writes, kind(&key.pk), 1);
        self.0.delete(key, condition).await
    }
    async fn query(&self, query: Query) -> StoreResult<Page> {
        bump(&self.1.reads, format!("query:{}", kind(&query.pk)), 1);
        self.0.query(query).await
    }
    async fn query_gsi1(&self, query: Query) -> StoreResult<Page> {
        bump(&self.1.reads, format!("gsi1:{}", kind(&query.pk)), 1);
        self.0.query_gsi1(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        for op in &ops {
            match op {
                WriteOp::Put { item, .. } => bump(&self.1.writes, kind(&item.pk), 1),
                WriteOp::Delete { key, .. } => bump(&self.1.writes, kind(&key.pk), 1),
                WriteOp::Check { key, .. } => bump(&self.1.reads, format!("check:{}", kind(&key.pk)), 1),
            }
        }
        self.0.transact(ops).await
    }
    async fn get_many(&self, keys: &[Key]) -> StoreResult<Vec<Item>> {
        for key in keys {
            bump(&self.1.reads, kind(&key.pk), 1);
        }
        self.0.get_many(keys).await
    }
}

struct CountingQueue(Arc<dyn Queue>, Arc<Counts>);

#[async_trait]
impl Queue for CountingQueue {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> StoreResult<()> {
        let calls = messages.len().div_ceil(MAX_BATCH) as u64;
        bump(&self.1.queue_calls, "send".into(), calls);
        self.0.send_batch(messages).await
    }
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Option<Duration>,
    ) -> StoreResult<Vec<ReceivedMessage>> {
        bump(&self.1.queue_calls, "receive".into(), 1);
        self.0.receive(max, wait, visibility).await
    }
    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        bump(&self.1.queue_calls, "delete".into(), 1);
        self.0.delete(receipt).await
    }
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> StoreResult<()> {
        bump(&self.1.queue_calls, "change_visibility".into(), 1);
        self.0.change_visibility(receipt, timeout).await
    }
}

struct CountingSecrets(Arc<dyn SecretStore>, Arc<Counts>);

#[async_trait]
impl SecretStore for CountingSecrets {
    async fn put(&self, name: &str, value: &SecretValue) -> StoreResult<()> {
        self.1.secret_calls.fetch_add(1, Ordering::Relaxed);
        self.0.put(name, value).await
    }
    async fn get(&self, name: &str) -> StoreResult<Option<SecretValue>> {
        self.1.secret_calls.fetch_add(1, Ordering::Relaxed);
        self.0.get(name).await
    }
    async fn delete(&self, name: &str) -> StoreResult<()> {
        self.1.secret_calls.fetch_add(1, Ordering::Relaxed);
        self.0.delete(name).await
    }
}

fn counted(ports: Ports, counts: &Arc<Counts>) -> Ports {
    let q = |q: Arc<dyn Queue>| -> Arc<dyn Queue> { Arc::new(CountingQueue(q, Arc::clone(counts))) };
    Ports {
        table: Arc::new(CountingTable(ports.table, Arc::clone(counts))),
        secrets: Arc::new(CountingSecrets(ports.secrets, Arc::clone(counts))),
        events: q(ports.events),
        events_dlq: q(ports.events_dlq),
        deliveries: q(ports.deliveries),
        deliveries_dlq: q(ports.deliveries_dlq),
    }
}

async fn aws_app(counts: &Arc<Counts>, config: Config) -> Result<App, String> {
    use automations::backends::aws::{create_queue_with_dlq, create_table, load_sdk_config};
    let sdk = load_sdk_config().await;
    let base = format!("bench-ops-{}", std::process::id());
    let err = |e: automations::ports::error::StoreError| e.to_string();
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &base).await.map_err(err)?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let visibility = Duration::from_secs(60);
    let (events, events_dlq) =
        create_queue_with_dlq(&sqs, &format!("{base}-events"), visibility, 5).await.map_err(err)?;
    let (deliveries, deliveries_dlq) =
        create_queue_with_dlq(&sqs, &format!("{base}-deliveries"), visibility, deliveries_max_receives(&config))
            .await
            .map_err(err)?;
    let settings = AwsSettings {
        table_name: base.clone(),
        events_queue_url: events,
        deliveries_queue_url: deliveries,
        events_dlq_url: events_dlq,
        deliveries_dlq_url: deliveries_dlq,
        secrets_prefix: format!("bench/{base}"),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = counted(aws_ports(&settings, &sdk, Arc::clone(&clock)).await, counts);
    build_app(ports, clock, config).map_err(|e| e.to_string())
}

/// The in-process API, called as the system admin.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let text = res.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return Err("the ops run did not finish in time".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One phase: `events` events, each matching `fire` (0 or 1) automation; returns the counts.
async fn phase(
    counts: &Arc<Counts>,
    api: &Api,
    arrivals: &sink::Arrivals,
    events: usize,
    fire: bool,
    tag: &str,
) -> Result<Value, String> {
    counts.reset();
    arrivals.clear();
    let batch: Vec<Value> = (0..events)
        .map(|i| {
            let collection = if fire { format!("c{}", i % 10) } else { "nothing-watches-this".to_owned() };
            json!({"id": format!("{tag}-{i}"), "type": "CREATE_ARTIFACT", "team": "bench", "project": "bench",
                   "artifact": {"collection": collection, "version": "v1"}})
        })
        .collect();
    api.post("/v1/events", Value::Array(batch)).await?;
    // Ingest marks each event seen last; delivery records the attempt and outcome together.
    wait_until(Duration::from_secs(300), || counts.writes_of("EVENT") >= events as u64).await?;
    if fire {
        wait_until(Duration::from_secs(300), || arrivals.count() >= events).await?;
        wait_until(Duration::from_secs(60), || counts.writes_of("EXEC") >= 3 * events as u64).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(counts.snapshot())
}

fn total(v: &Value, field: &str, skip_receive: bool) -> f64 {
    v[field]
        .as_object()
        .map(|m| {
            m.iter().filter(|(k, _)| !(skip_receive && k.as_str() == "receive")).filter_map(|(_, n)| n.as_f64()).sum()
        })
        .unwrap_or(0.0)
}

pub async fn run(events: usize) -> Result<Value, String> {
    let counts = Arc::new(Counts::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let app = aws_app(&counts, Config::local(&base)).await?;
    let token = app.bootstrap_admin_token(None).await.map_err(|e| e.to_string())?.ok_or("admin token exists")?;
    let router = automations::http::local_router(app.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let workers = automations::startup::spawn_local_workers(&app, 32, stop);
    let (sink_addr, arrivals) = sink::start().await.map_err(|e| e.to_string())?;
    let api = Api { client: reqwest::Client::new(), base, token };
    api.post("/v1/teams", json!({"name": "bench"})).await?;
    let webhook = api
        .post("/v1/teams/bench/webhooks", json!({"name": "sink", "url": format!("http://{sink_addr}/hook")}))
        .await?;
    for i in 0..10 {
        let spec = json!({
            "name": format!("ops {i}"), "scope": {"type": "project", "project": "bench"},
            "event": {"type": "CREATE_ARTIFACT", "filter": {"artifact.collection": format!("c{i}")}},
            "action": {"type": "webhook", "webhook_id": webhook["id"], "payload": {"id": "${event_id}"}}});
        api.post("/v1/teams/bench/automations", spec).await?;
    }
    // Warm the secret and automation caches, as a running service has them.
    phase(&counts, &api, &arrivals, 10, true, "warm").await?;
    let quiet = phase(&counts, &api, &arrivals, events, false, "quiet").await?;
    let firing = phase(&counts, &api, &arrivals, events, true, "fire").await?;
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    let n = events as f64;
    let per_event_writes = total(&quiet, "writes", false) / n;
    let per_fire_writes = (total(&firing, "writes", false) - total(&quiet, "writes", false)) / n;
    Ok(json!({
        "events": events,
        "writes_per_event": per_event_writes,
        "writes_per_fired_automation": per_fire_writes,
        "reads_per_event": total(&quiet, "reads", false) / n,
        "reads_per_fired_automation": (total(&firing, "reads", false) - total(&quiet, "reads", false)) / n,
        "sqs_calls_per_event_excluding_receives": total(&quiet, "queue_calls", true) / n,
        "sqs_calls_per_fired_automation_excluding_receives":
            (total(&firing, "queue_calls", true) - total(&quiet, "queue_calls", true)) / n,
        "secret_calls_per_fired_automation": firing["secret_calls"].as_f64().unwrap_or(0.0) / n,
        "no_fire": quiet,
        "one_fire_each": firing,
    }))
}
