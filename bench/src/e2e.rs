//! End to end through the local process: events posted to `/v1/events` become webhook
//! deliveries at the sink. Also the bare baseline: the same sink and concurrency, a plain
//! client posting pre-rendered bodies.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::sink;

pub struct E2eFigures {
    pub automations: usize,
    pub events: usize,
    pub e2e_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub offered_rate: f64,
    pub latency_events: usize,
}

const TOKEN: &str = "bench-admin-token-not-a-secret";

struct Service {
    child: std::process::Child,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Service {
    async fn start(binary: &Path) -> Result<Service, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port()?;
        let child = std::process::Command::new(binary)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("AUTOMATIONS_DATA_DIR", dir.path())
            .env("AUTOMATIONS_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let service =
            Service { child, base: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new(), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if service
                .client
                .get(format!("{}/healthz", service.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(service);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the local process did not answer /healthz within 30 s".into())
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: &Value) -> Result<Value, String> {
        let res = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(body)
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

    async fn post_events(&self, events: &[Value]) -> Result<(), String> {
        self.call(reqwest::Method::POST, "/v1/events", &Value::Array(events.to_vec())).await.map(|_| ())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn event(id: &str, collection: usize) -> Value {
    json!({"id": id, "type": "CREATE_ARTIFACT", "team": "bench", "project": "bench",
           "artifact": {"collection": format!("c{collection}"), "version": "v1"}})
}

/// 100 automations on one project, each matching one collection, so every event fires one.
async fn set_up(service: &Service, sink: std::net::SocketAddr, automations: usize) -> Result<(), String> {
    use reqwest::Method;
    service.call(Method::POST, "/v1/teams", &json!({"name": "bench"})).await?;
    let webhook = service
        .call(Method::POST, "/v1/teams/bench/webhooks", &json!({"name": "sink", "url": format!("http://{sink}/hook")}))
        .await?;
    let webhook_id = webhook["id"].as_str().ok_or("webhook has no id")?.to_owned();
    for i in 0..automations {
        let spec = json!({
            "name": format!("bench {i}"),
            "scope": {"type": "project", "project": "bench"},
            "event": {"type": "CREATE_ARTIFACT", "filter": {"artifact.collection": format!("c{i}")}},
            "action": {"type": "webhook", "webhook_id": webhook_id, "payload": {"id": "${event_id}", "version": "${artifact_version_string}"}}
        });
        service.call(Method::POST, "/v1/teams/bench/automations", &spec).await?;
    }
    Ok(())
}

async fn wait_for(arrivals: &sink::Arrivals, count: usize, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while arrivals.count() < count {
        if Instant::now() > deadline {
            return Err(format!("only {} of {count} deliveries arrived within {limit:?}", arrivals.count()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub async fn run(
    binary: &Path,
    automations: usize,
    events: usize,
    rate: f64,
    latency_seconds: f64,
) -> Result<E2eFigures, String> {
    let (sink_addr, arrivals) = sink::start().await.map_err(|e| e.to_string())?;
    let service = Service::start(binary).await?;
    set_up(&service, sink_addr, automations).await?;

    // Warm-up: caches, connections, SQLite pages.
    let warm: Vec<Value> = (0..200).map(|i| event(&format!("warm-{i}"), i % automations)).collect();
    service.post_events(&warm).await?;
    wait_for(&arrivals, warm.len(), Duration::from_secs(60)).await?;
    arrivals.clear();

    // Maximum rate: all events posted in batches of 500 by 4 concurrent posters.
    let batches: Vec<Vec<Value>> = (0..events)
        .map(|i| event(&format!("max-{i}"), i % automations))
        .collect::<Vec<_>>()
        .chunks(500)
        .map(<[Value]>::to_vec)
        .collect();
    let start = Instant::now();
    let posted: Vec<Result<(), String>> =
        futures::stream::iter(batches.iter().map(|b| service.post_events(b))).buffer_unordered(4).collect().await;
    posted.into_iter().collect::<Result<Vec<()>, String>>()?;
    wait_for(&arrivals, events, Duration::from_secs(900)).await?;
    let e2e_rate = events as f64 / start.elapsed().as_secs_f64();
    arrivals.clear();

    // Latency at a fixed offered rate: a batch of 10 every 10/rate seconds.
    let total = (rate * latency_seconds) as usize;
    let per_tick = 10usize;
    let tick = Duration::from_secs_f64(per_tick as f64 / rate);
    let mut sent = Vec::with_capacity(total);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = Vec::new();
    for b in 0..total.div_ceil(per_tick) {
        interval.tick().await;
        let batch: Vec<Value> =
            (0..per_tick).map(|i| event(&format!("lat-{b}-{i}"), (b * per_tick + i) % automations)).collect();
        let at = Instant::now();
        for e in &batch {
            sent.push((e["id"].as_str().unwrap_or_default().to_owned(), at));
        }
        let client = service.client.clone();
        let url = format!("{}/v1/events", service.base);
        in_flight.push(tokio::spawn(async move {
            client.post(url).bearer_auth(TOKEN).json(&batch).send().await.map(|_| ())
        }));
    }
    for f in in_flight {
        f.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    wait_for(&arrivals, sent.len(), Duration::from_secs(300)).await?;
    let mut latencies: Vec<f64> = sent
        .iter()
        .filter_map(|(id, at)| arrivals.get(id).map(|arrived| arrived.duration_since(*at).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(E2eFigures {
        automations,
        events,
        e2e_rate,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        offered_rate: rate,
        latency_events: latencies.len(),
    })
}

/// The bare baseline: pre-rendered bodies straight to the sink with the delivery worker's
/// concurrency; what the machine can do without the service in between.
pub async fn bare(requests: usize, concurrency: usize) -> Result<f64, String> {
    let (sink_addr, arrivals) = sink::start().await.map_err(|e| e.to_string())?;
    let client = reqwest::Client::new();
    let url = format!("http://{sink_addr}/hook");
    let bodies: Vec<String> =
        (0..requests).map(|i| json!({"id": format!("bare-{i}"), "version": "bench/bench/c1:v1"}).to_string()).collect();
    let start = Instant::now();
    let results: Vec<Result<reqwest::Response, reqwest::Error>> = futures::stream::iter(
        bodies.into_iter().map(|body| client.post(&url).header("content-type", "application/json").body(body).send()),
    )
    .buffer_unordered(concurrency)
    .collect()
    .await;
    let failures = results.iter().filter(|r| r.as_ref().map_or(true, |r| !r.status().is_success())).count();
    if failures > 0 {
        return Err(format!("{failures} bare requests failed"));
    }
    let rate = requests as f64 / start.elapsed().as_secs_f64();
    if arrivals.count() != requests {
        return Err(format!("the sink saw {} of {requests}", arrivals.count()));
    }
    Ok(rate)
}
