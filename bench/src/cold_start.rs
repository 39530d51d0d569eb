//! Cold start: the time from spawning a function binary against a minimal Lambda Runtime API
//! to its first `GET /runtime/invocation/next`, i.e. everything the function does before it can
//! take work (config, SDK clients, router).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tokio::sync::Notify;

/// A runtime API that only notes the first request for work and never answers it.
async fn runtime_api() -> std::io::Result<(std::net::SocketAddr, Arc<Notify>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let asked = Arc::new(Notify::new());
    let notify = Arc::clone(&asked);
    let app = Router::new().route(
        "/2018-06-01/runtime/invocation/next",
        get(move || {
            let notify = Arc::clone(&notify);
            async move {
                notify.notify_one();
                // Hold the request: the function is then idle, as it is between invocations.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                ""
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, asked))
}

/// Median of `runs` cold starts of `binary`, in milliseconds.
pub async fn measure(binary: &Path, runs: usize) -> Result<f64, String> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (addr, asked) = runtime_api().await.map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut child = std::process::Command::new(binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            // Never reached during start-up; set so no call could leave the machine.
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("TABLE_NAME", "bench")
            .env("EVENTS_QUEUE_URL", "http://127.0.0.1:9/000000000000/events")
            .env("DELIVERIES_QUEUE_URL", "http://127.0.0.1:9/000000000000/deliveries")
            .env("SECRETS_PREFIX", "bench")
            .env("PUBLIC_BASE_URL", "https://automations.example.com")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let waited = tokio::time::timeout(Duration::from_secs(10), asked.notified()).await;
        let elapsed = start.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        if waited.is_err() {
            return Err(format!("{} never asked for work within 10 s", binary.display()));
        }
        samples.push(elapsed.as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}
