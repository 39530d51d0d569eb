//! The sink: answers 200 to every POST and records when each request arrived, keyed by the
//! `id` field of its JSON body (the event id the payload template puts there).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;

#[derive(Clone, Default)]
pub struct Arrivals(Arc<Mutex<HashMap<String, Instant>>>);

impl Arrivals {
    pub fn count(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn get(&self, id: &str) -> Option<Instant> {
        self.0.lock().ok().and_then(|m| m.get(id).copied())
    }

    pub fn clear(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }
}

async fn record(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
    let now = Instant::now();
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .unwrap_or_default();
    if let Ok(mut m) = arrivals.0.lock() {
        m.entry(id).or_insert(now);
    }
    "ok"
}

/// Starts the sink on 127.0.0.1 and returns its address and arrival log.
pub async fn start() -> std::io::Result<(SocketAddr, Arrivals)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let arrivals = Arrivals::default();
    let app = Router::new().route("/{*path}", post(record)).with_state(arrivals.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, arrivals))
}
