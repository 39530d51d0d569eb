//! Fresh, isolated stores on each backend: SQLite in a temp dir, AWS on the moto server that
//! `infra/test.sh` starts (uniquely named table, queues and secrets prefix per test).

use std::sync::Arc;
use std::time::Duration;

use automations::backends::sqlite::{QueueConfig, SqliteDb, SqliteQueue, SqliteSecrets, SqliteTable};
use automations::ports::clock::{Clock, SystemClock};
use automations::ports::queue::Queue;
use automations::ports::secrets::SecretStore;
use automations::ports::table::Table;

/// The receive count after which the conformance queue dead-letters a message.
pub const MAX_RECEIVES: u32 = 2;

/// One backend's ports, isolated from every other test.
pub struct Stores {
    pub table: Arc<dyn Table>,
    /// Dead-letters to `dlq` after `MAX_RECEIVES` receives; default visibility 30 s.
    pub queue: Arc<dyn Queue>,
    pub dlq: Arc<dyn Queue>,
    pub secrets: Arc<dyn SecretStore>,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Aws,
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::generate().to_string().to_lowercase())
}

impl Stores {
    pub async fn new(backend: Backend) -> Stores {
        match backend {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Aws => Self::aws().await,
        }
    }

    pub async fn sqlite() -> Stores {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let db = SqliteDb::open(&dir.path().join("automations.db"), clock).expect("open sqlite");
        let config = QueueConfig {
            visibility_timeout: Duration::from_secs(30),
            ..QueueConfig::with_dead_letter("q", MAX_RECEIVES)
        };
        let queue = SqliteQueue::create(db.clone(), "q", config).await.expect("queue");
        let dlq = SqliteQueue::open(db.clone(), "q-dlq").await.expect("dlq");
        let secrets = SqliteSecrets::open(db.clone(), &dir.path().join("secrets.key")).expect("secrets");
        Stores {
            table: Arc::new(SqliteTable::new(db)),
            queue: Arc::new(queue),
            dlq: Arc::new(dlq),
            secrets: Arc::new(secrets),
            _dir: Some(dir),
        }
    }

    pub async fn aws() -> Stores {
        aws::stores().await
    }
}

/// AWS ports for a whole `App` on moto: fresh table, queues and secrets prefix.
pub async fn aws_ports(_config: &automations::app::config::Config) -> automations::startup::Ports {
    aws::require_moto();
    unimplemented!("wired when the AWS backends land")
}

mod aws {
    use super::*;

    pub async fn stores() -> Stores {
        require_moto();
        unimplemented!("wired when the AWS backends land")
    }

    /// The AWS cases need the moto server of `infra/test.sh`; say so instead of hanging.
    pub fn require_moto() {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
        assert!(
            endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost"),
            "AWS conformance cases run against moto on 127.0.0.1: use ./infra/test.sh (AWS_ENDPOINT_URL is {endpoint:?})"
        );
    }
}
