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
use crate::delivery::ssrf::SsrfGuard;
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
    let guard = SsrfGuard::system(config.allowed_networks.clone());
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

/// The App of a Lambda function, from the environment (DESIGN §11). Placeholder until the AWS
/// wiring lands: it fails at start with one clear line.
pub async fn aws_app_from_env() -> Result<App, StartupError> {
    Err(StartupError::Config("the AWS backend is not wired yet".into()))
}
