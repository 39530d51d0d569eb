//! Building an `App` from its parts, once per process: the four functions and the local
//! process share this, so their mains stay wiring (STYLE §1).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::app::config::Config;
use crate::app::repo::Repo;
use crate::backends::sqlite::{QueueConfig, SqliteDb, SqliteQueue, SqliteSecrets, SqliteTable};
use crate::delivery::sender::{DEFAULT_TIMEOUT, Sender};
use crate::delivery::ssrf::{Resolver, SsrfGuard, SystemResolver};
use crate::ports::clock::Clock;
use crate::ports::error::StoreError;
use crate::ports::queue::Queue;
use crate::ports::secrets::{CachingSecretStore, SECRET_CACHE_TTL, SecretStore};
use crate::ports::table::Table;

/// `User-Agent` of every outgoing request.
pub const USER_AGENT: &str = concat!("automations/", env!("CARGO_PKG_VERSION"));

/// Queue names of the embedded backend (the same as the default SQS queue names).
pub const EVENTS_QUEUE: &str = "automations-events";
pub const DELIVERIES_QUEUE: &str = "automations-deliveries";

/// Receives after which a message is dead-lettered by the queue itself: a backstop only, since
/// ingest dead-letters poison at once and deliver counts attempts in the table.
pub const EVENTS_MAX_RECEIVES: u32 = 5;

/// The deliveries backstop must exceed the automatic attempts, or SQS would dead-letter a job
/// that is merely waiting for its next retry.
pub fn deliveries_max_receives(config: &Config) -> u32 {
    config.retry.max_attempts() + 5
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ports an `App` is built from.
pub struct Ports {
    pub table: Arc<dyn Table>,
    pub secrets: Arc<dyn SecretStore>,
    pub events: Arc<dyn Queue>,
    pub events_dlq: Arc<dyn Queue>,
    pub deliveries: Arc<dyn Queue>,
    pub deliveries_dlq: Arc<dyn Queue>,
}

/// Wires ports, clock and configuration into an `App`, with the secret cache and the sender.
pub fn build_app(ports: Ports, clock: Arc<dyn Clock>, config: Config) -> Result<App, StartupError> {
    build_app_with_resolver(ports, clock, config, Arc::new(SystemResolver))
}

/// [`build_app`] with the SSRF guard resolving host names through `resolver`: tests map names
/// to private addresses without touching DNS (DESIGN §7, the resolver is injectable).
pub fn build_app_with_resolver(
    ports: Ports,
    clock: Arc<dyn Clock>,
    config: Config,
    resolver: Arc<dyn Resolver>,
) -> Result<App, StartupError> {
    let guard = SsrfGuard::new(config.allowed_networks.clone(), resolver);
    let sender = Sender::new(guard, DEFAULT_TIMEOUT, USER_AGENT).map_err(|e| StartupError::Config(e.to_string()))?;
    Ok(App {
        repo: Repo::new(ports.table, Arc::clone(&clock)),
        secrets: Arc::new(CachingSecretStore::new(ports.secrets, SECRET_CACHE_TTL)),
        events: ports.events,
        events_dlq: ports.events_dlq,
        deliveries: ports.deliveries,
        deliveries_dlq: ports.deliveries_dlq,
        sender: Arc::new(sender),
        clock,
        config: Arc::new(config),
    })
}

/// The embedded backend: `<data_dir>/automations.db` and `<data_dir>/secrets.key`.
pub async fn sqlite_ports(data_dir: &Path, clock: Arc<dyn Clock>, config: &Config) -> Result<Ports, StartupError> {
    let db = SqliteDb::open(&data_dir.join("automations.db"), clock)?;
    let events_config = QueueConfig::with_dead_letter(EVENTS_QUEUE, EVENTS_MAX_RECEIVES);
    let deliveries_config = QueueConfig::with_dead_letter(DELIVERIES_QUEUE, deliveries_max_receives(config));
    let events = SqliteQueue::create(db.clone(), EVENTS_QUEUE, events_config).await?;
    let deliveries = SqliteQueue::create(db.clone(), DELIVERIES_QUEUE, deliveries_config).await?;
    let events_dlq = SqliteQueue::open(db.clone(), &format!("{EVENTS_QUEUE}-dlq")).await?;
    let deliveries_dlq = SqliteQueue::open(db.clone(), &format!("{DELIVERIES_QUEUE}-dlq")).await?;
    let secrets = SqliteSecrets::open(db.clone(), &data_dir.join("secrets.key"))?;
    Ok(Ports {
        table: Arc::new(SqliteTable::new(db)),
        secrets: Arc::new(secrets),
        events: Arc::new(events),
        events_dlq: Arc::new(events_dlq),
        deliveries: Arc::new(deliveries),
        deliveries_dlq: Arc::new(deliveries_dlq),
    })
}

/// Polling interval hint for workers that have nothing to do.
pub const IDLE_WAIT: Duration = Duration::from_secs(1);

// ---- configuration from the environment (DESIGN §11) -------------------------------------

/// Reads one variable; empty counts as unset except where noted.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str) -> Result<String, StartupError> {
    var(name).ok_or_else(|| StartupError::Config(format!("{name} must be set")))
}

/// The `Config` from the environment. `local` picks the local defaults: loopback allowed for
/// deliveries when `AUTOMATIONS_ALLOWED_NETWORKS` is unset, and cookies without `Secure` when
/// the public URL is plain http.
pub fn config_from_env(local: bool, default_public_base_url: Option<&str>) -> Result<Config, StartupError> {
    use crate::delivery::retry::{RetryPolicy, RetrySchedule};
    use crate::delivery::ssrf::AllowedNetworks;

    let public_base_url = match (var("PUBLIC_BASE_URL"), default_public_base_url) {
        (Some(url), _) => url,
        (None, Some(default)) => default.to_owned(),
        (None, None) => return Err(StartupError::Config("PUBLIC_BASE_URL must be set".into())),
    };
    url::Url::parse(&public_base_url)
        .map_err(|e| StartupError::Config(format!("PUBLIC_BASE_URL is not a URL ({e}): {public_base_url}")))?;
    // Set to the empty string it allows nothing; unset it is the mode's default.
    let allowed_networks = match std::env::var("AUTOMATIONS_ALLOWED_NETWORKS") {
        Ok(v) => AllowedNetworks::parse(&v)
            .map_err(|e| StartupError::Config(format!("AUTOMATIONS_ALLOWED_NETWORKS: {e}")))?,
        Err(_) if local => AllowedNetworks::loopback(),
        Err(_) => AllowedNetworks::none(),
    };
    let retry = match var("RETRY_SCHEDULE") {
        Some(s) => RetryPolicy::new(
            RetrySchedule::parse(&s).map_err(|e| StartupError::Config(format!("RETRY_SCHEDULE: {e}")))?,
        ),
        None => RetryPolicy::default(),
    };
    let insecure_cookies = local && public_base_url.starts_with("http://");
    Ok(Config {
        public_base_url: public_base_url.trim_end_matches('/').to_owned(),
        slack_base_url: var("SLACK_BASE_URL")
            .unwrap_or_else(|| "https://slack.com".into())
            .trim_end_matches('/')
            .to_owned(),
        slack_api_base_url: var("SLACK_API_BASE_URL")
            .unwrap_or_else(|| "https://slack.com".into())
            .trim_end_matches('/')
            .to_owned(),
        slack_success_redirect: var("SLACK_SUCCESS_REDIRECT"),
        allowed_networks,
        retry,
        insecure_cookies,
    })
}

/// Where the AWS resources are (Lambda environment, or `automations --backend aws`).
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub table_name: String,
    pub events_queue_url: String,
    pub deliveries_queue_url: String,
    /// Default: the events queue URL + `-dlq`.
    pub events_dlq_url: String,
    /// Default: the deliveries queue URL + `-dlq`.
    pub deliveries_dlq_url: String,
    pub secrets_prefix: String,
}

impl AwsSettings {
    pub fn from_env() -> Result<Self, StartupError> {
        let events_queue_url = required("EVENTS_QUEUE_URL")?;
        let deliveries_queue_url = required("DELIVERIES_QUEUE_URL")?;
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            events_dlq_url: var("EVENTS_DLQ_URL").unwrap_or_else(|| format!("{events_queue_url}-dlq")),
            deliveries_dlq_url: var("DELIVERIES_DLQ_URL").unwrap_or_else(|| format!("{deliveries_queue_url}-dlq")),
            events_queue_url,
            deliveries_queue_url,
            secrets_prefix: required("SECRETS_PREFIX")?.trim_end_matches('/').to_owned(),
        })
    }
}

/// The AWS backends (DynamoDB, SQS, Secrets Manager) for `settings`.
pub async fn aws_ports(settings: &AwsSettings, sdk: &aws_config::SdkConfig, clock: Arc<dyn Clock>) -> Ports {
    use crate::backends::aws::{DynamoTable, SecretsManagerStore, SqsQueue};

    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    Ports {
        table: Arc::new(DynamoTable::new(dynamo, &settings.table_name, clock)),
        secrets: Arc::new(SecretsManagerStore::new(secrets, &settings.secrets_prefix)),
        events: Arc::new(SqsQueue::new(sqs.clone(), &settings.events_queue_url)),
        events_dlq: Arc::new(SqsQueue::new(sqs.clone(), &settings.events_dlq_url)),
        deliveries: Arc::new(SqsQueue::new(sqs.clone(), &settings.deliveries_queue_url)),
        deliveries_dlq: Arc::new(SqsQueue::new(sqs, &settings.deliveries_dlq_url)),
    }
}

/// What every Lambda function starts with: configuration and AWS ports from the environment.
pub async fn aws_app_from_env() -> Result<App, StartupError> {
    let config = config_from_env(false, None)?;
    let settings = AwsSettings::from_env()?;
    let sdk = crate::backends::aws::load_sdk_config().await;
    let clock: Arc<dyn Clock> = Arc::new(crate::ports::clock::SystemClock);
    build_app(aws_ports(&settings, &sdk, Arc::clone(&clock)).await, clock, config)
}

/// Logs: JSON lines when `LOG_FORMAT=json` (Lambda), readable text otherwise; `RUST_LOG`
/// filters (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = var("LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // try_init: a second call (tests) keeps the first subscriber instead of panicking.
    let _ =
        if json { builder.json().flatten_event(true).with_current_span(true).try_init() } else { builder.try_init() };
}

/// Start-up failures end the process with one clear line (DESIGN §11).
pub fn or_exit<T>(result: Result<T, StartupError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => {
            eprintln!("automations: cannot start: {e}");
            std::process::exit(1);
        }
    }
}

/// The local process's ingest and delivery workers on the app's queues; they stop taking work
/// when `stop` turns true and return once in-flight messages are settled.
pub fn spawn_local_workers(
    app: &App,
    delivery_concurrency: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use crate::app::deliver::DeliverHandler;
    use crate::app::ingest::IngestHandler;
    use crate::app::worker::{MessageHandler, run_local_worker};

    let ingest: Arc<dyn MessageHandler> = Arc::new(IngestHandler::new(app.clone()));
    let deliver: Arc<dyn MessageHandler> = Arc::new(DeliverHandler::new(app.clone()));
    vec![
        // Ordered: rows of one run must reach its metric windows in step order.
        tokio::spawn(run_local_worker(
            Arc::clone(&app.events),
            Arc::clone(&app.events_dlq),
            ingest,
            10,
            true,
            stop.clone(),
        )),
        tokio::spawn(run_local_worker(
            Arc::clone(&app.deliveries),
            Arc::clone(&app.deliveries_dlq),
            deliver,
            delivery_concurrency,
            false,
            stop,
        )),
    ]
}
