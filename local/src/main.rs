//! `automations`: the config API, Slack OAuth, ingest and delivery in one process, on the
//! embedded SQLite store by default or on AWS with `--backend aws`. Wiring only: everything it
//! runs lives in the `automations` crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use automations::app::App;
use automations::delivery::retry::{RetryPolicy, RetrySchedule};
use automations::ports::clock::{Clock, SystemClock};
use automations::startup::{self, StartupError, or_exit};
use clap::{Parser, ValueEnum};

/// How long shutdown may take before in-flight work is abandoned (it is then redelivered).
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(25);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// One SQLite file under --data-dir (tables, queues, encrypted secrets).
    Sqlite,
    /// DynamoDB, SQS and Secrets Manager (honours AWS_ENDPOINT_URL).
    Aws,
}

/// Event automations for ML teams, in one process.
#[derive(Debug, Parser)]
#[command(
    name = "automations",
    version,
    after_help = "The Lambda variables are read from the environment too: PUBLIC_BASE_URL (default http://<listen>), \
SLACK_BASE_URL, SLACK_API_BASE_URL, SLACK_SUCCESS_REDIRECT, AUTOMATIONS_ALLOWED_NETWORKS (default here: 127.0.0.0/8,::1/128), \
LOG_FORMAT (json|text), RUST_LOG; with --backend aws also TABLE_NAME, EVENTS_QUEUE_URL, DELIVERIES_QUEUE_URL, \
EVENTS_DLQ_URL, DELIVERIES_DLQ_URL, SECRETS_PREFIX and the usual AWS_* variables."
)]
struct Cli {
    /// Address the API and Slack OAuth routes listen on.
    #[arg(long, env = "AUTOMATIONS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the embedded store keeps automations.db and secrets.key.
    #[arg(long, env = "AUTOMATIONS_DATA_DIR", default_value = "./.automations")]
    data_dir: PathBuf,
    /// Fixes the system admin token instead of generating one on first start.
    #[arg(long, env = "AUTOMATIONS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Delays between automatic delivery attempts, e.g. `5s,5m,30m,2h,5h,10h,10h` (the default).
    #[arg(long, env = "RETRY_SCHEDULE")]
    retry_schedule: Option<String>,
    /// Which store to run on.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// With --backend aws: create the table, the queues (with their -dlq queues) and the admin
    /// token secret first (for moto and first-time set-up).
    #[arg(long)]
    create_resources: bool,
    /// Deliveries sent at once by the delivery worker.
    #[arg(long, env = "AUTOMATIONS_DELIVERY_CONCURRENCY", default_value_t = 32)]
    delivery_concurrency: usize,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    startup::init_tracing();
    let app = or_exit(build(&cli).await);
    let token = or_exit(
        app.bootstrap_admin_token(cli.admin_token.as_deref()).await.map_err(|e| StartupError::Config(e.to_string())),
    );
    let listener = match tokio::net::TcpListener::bind(cli.listen).await {
        Ok(l) => l,
        Err(e) => or_exit(Err(StartupError::Config(format!("cannot listen on {}: {e}", cli.listen)))),
    };
    let backend = match cli.backend {
        Backend::Sqlite => format!("SQLite in {}", cli.data_dir.display()),
        Backend::Aws => "DynamoDB, SQS and Secrets Manager".to_owned(),
    };
    println!("Automations is listening on http://{} ({backend})", cli.listen);
    match (&token, &cli.admin_token) {
        (Some(t), None) => println!("System admin token (shown once, keep it): {t}"),
        (Some(_), Some(_)) => println!("System admin token: the one given by --admin-token / AUTOMATIONS_ADMIN_TOKEN"),
        (None, _) => println!("System admin token: the one printed on first start (kept in the secret store)"),
    }
    run(app, listener, cli.delivery_concurrency).await;
}

async fn build(cli: &Cli) -> Result<App, StartupError> {
    let default_url = format!("http://{}", cli.listen);
    let mut config = startup::config_from_env(true, Some(&default_url))?;
    if let Some(s) = &cli.retry_schedule {
        let schedule = RetrySchedule::parse(s).map_err(|e| StartupError::Config(format!("--retry-schedule: {e}")))?;
        config.retry = RetryPolicy::new(schedule);
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = match cli.backend {
        Backend::Sqlite => startup::sqlite_ports(&cli.data_dir, Arc::clone(&clock), &config).await?,
        Backend::Aws => {
            let mut settings = startup::AwsSettings::from_env()?;
            let sdk = automations::backends::aws::load_sdk_config().await;
            if cli.create_resources {
                create_resources(&sdk, &mut settings, &config).await?;
            }
            startup::aws_ports(&settings, &sdk, Arc::clone(&clock)).await
        }
    };
    startup::build_app(ports, clock, config)
}

/// Creates what `--backend aws` needs; queue names are the last path segment of their URLs.
async fn create_resources(
    sdk: &aws_config::SdkConfig,
    settings: &mut startup::AwsSettings,
    config: &automations::app::config::Config,
) -> Result<(), StartupError> {
    use automations::backends::aws::{create_queue_with_dlq, create_table};

    let name_of = |url: &str| url.rsplit('/').next().unwrap_or_default().to_owned();
    create_table(&aws_sdk_dynamodb::Client::new(sdk), &settings.table_name).await?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let visibility = Duration::from_secs(60);
    let (events, events_dlq) =
        create_queue_with_dlq(&sqs, &name_of(&settings.events_queue_url), visibility, startup::EVENTS_MAX_RECEIVES)
            .await?;
    let (deliveries, deliveries_dlq) = create_queue_with_dlq(
        &sqs,
        &name_of(&settings.deliveries_queue_url),
        visibility,
        startup::deliveries_max_receives(config),
    )
    .await?;
    settings.events_queue_url = events;
    settings.events_dlq_url = events_dlq;
    settings.deliveries_queue_url = deliveries;
    settings.deliveries_dlq_url = deliveries_dlq;
    tracing::info!(table = %settings.table_name, "AWS resources are in place");
    Ok(())
}

/// Serves HTTP and runs both workers until SIGINT or SIGTERM, then drains within the budget.
async fn run(app: App, listener: tokio::net::TcpListener, delivery_concurrency: usize) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = startup::spawn_local_workers(&app, delivery_concurrency, stopped.clone());
    let mut http_stopped = stopped.clone();
    let server = axum::serve(listener, automations::http::local_router(app)).with_graceful_shutdown(async move {
        let _ = http_stopped.wait_for(|s| *s).await;
    });
    let server = tokio::spawn(async move { server.await });
    shutdown_signal().await;
    tracing::info!("shutting down: no new work; finishing what is in flight");
    let _ = stop.send(true);
    let drain = async {
        let _ = server.await;
        for worker in workers {
            let _ = worker.await;
        }
    };
    if tokio::time::timeout(SHUTDOWN_BUDGET, drain).await.is_err() {
        tracing::warn!("in-flight work did not finish in time; it will be redelivered");
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
