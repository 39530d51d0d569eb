//! `bench`: the measurements behind `infra/bench.sh`. Each subcommand prints its figures as one
//! JSON object on stdout; the script gathers them.

mod cold_start;
mod e2e;
mod ops;
mod sink;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(name = "bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Events through the local process to a sink, and the bare baseline on the same machine.
    E2e {
        /// The release `automations` binary.
        #[arg(long)]
        binary: PathBuf,
        #[arg(long, default_value_t = 100)]
        automations: usize,
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Offered events per second for the latency phase.
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        latency_seconds: f64,
        /// The bare client's concurrency: the delivery worker's default.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Store operations per event and per fired automation, on the AWS backends (moto:
    /// needs AWS_ENDPOINT_URL).
    Ops {
        #[arg(long, default_value_t = 200)]
        events: usize,
    },
    /// Median time from spawn to the first request for work, per function binary.
    ColdStart {
        #[arg(long, default_value_t = 7)]
        runs: usize,
        binaries: Vec<PathBuf>,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::E2e { binary, automations, events, rate, latency_seconds, concurrency } => {
            match e2e::run(&binary, automations, events, rate, latency_seconds).await {
                Ok(f) => match e2e::bare(events, concurrency).await {
                    Ok(bare_rate) => Ok(json!({
                        "automations": f.automations, "events": f.events,
                        "e2e_rate": f.e2e_rate, "bare_rate": bare_rate, "ratio": f.e2e_rate / bare_rate,
                        "p50_ms": f.p50_ms, "p99_ms": f.p99_ms,
                        "offered_rate": f.offered_rate, "latency_events": f.latency_events,
                        "concurrency": concurrency,
                    })),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        }
        Command::Ops { events } => ops::run(events).await,
        Command::ColdStart { runs, binaries } => {
            let mut out = serde_json::Map::new();
            let mut failure = None;
            for b in &binaries {
                match cold_start::measure(b, runs).await {
                    Ok(ms) => {
                        let name = b.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                        out.insert(name, json!(ms));
                    }
                    Err(e) => failure = Some(e),
                }
            }
            failure.map_or(Ok(serde_json::Value::Object(out)), Err)
        }
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}
