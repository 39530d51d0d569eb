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

/// AWS ports for a whole `App` on moto: a fresh table, queues and secrets prefix.
pub async fn aws_ports(config: &automations::app::config::Config) -> automations::startup::Ports {
    let sdk = aws::sdk().await;
    let names = unique("app");
    let settings =
        aws::create(&sdk, &names, Duration::from_secs(60), automations::startup::deliveries_max_receives(config)).await;
    automations::startup::aws_ports(&settings, &sdk, Arc::new(SystemClock)).await
}

mod aws {
    use automations::backends::aws::{
        DynamoTable, SecretsManagerStore, SqsQueue, create_queue_with_dlq, create_table, load_sdk_config,
    };
    use automations::startup::AwsSettings;

    use super::*;

    pub async fn sdk() -> aws_config::SdkConfig {
        require_moto();
        load_sdk_config().await
    }

    /// Creates a table and the two queues (with DLQs) named after `base`.
    pub async fn create(
        sdk: &aws_config::SdkConfig,
        base: &str,
        visibility: Duration,
        max_receives: u32,
    ) -> AwsSettings {
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        create_table(&dynamo, base).await.expect("create table");
        let (events, events_dlq) =
            create_queue_with_dlq(&sqs, &format!("{base}-events"), visibility, 5).await.expect("events queue");
        let (deliveries, deliveries_dlq) =
            create_queue_with_dlq(&sqs, &format!("{base}-deliveries"), visibility, max_receives)
                .await
                .expect("deliveries queue");
        AwsSettings {
            table_name: base.to_owned(),
            events_queue_url: events,
            deliveries_queue_url: deliveries,
            events_dlq_url: events_dlq,
            deliveries_dlq_url: deliveries_dlq,
            secrets_prefix: format!("test/{base}"),
        }
    }

    pub async fn stores() -> Stores {
        let sdk = sdk().await;
        let base = unique("conf");
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        create_table(&dynamo, &base).await.expect("create table");
        let (queue, dlq) = create_queue_with_dlq(&sqs, &format!("{base}-q"), Duration::from_secs(30), MAX_RECEIVES)
            .await
            .expect("queue");
        Stores {
            table: Arc::new(DynamoTable::new(dynamo, &base, Arc::new(SystemClock))),
            queue: Arc::new(SqsQueue::new(sqs.clone(), queue)),
            dlq: Arc::new(SqsQueue::new(sqs, dlq)),
            secrets: Arc::new(SecretsManagerStore::new(
                aws_sdk_secretsmanager::Client::new(&sdk),
                format!("test/{base}"),
            )),
            _dir: None,
        }
    }

    /// The AWS cases need the moto server of `infra/test.sh`; say so instead of hanging.
    pub fn require_moto() {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
        assert!(
            endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost"),
            "AWS cases run against moto on 127.0.0.1: use ./infra/test.sh (AWS_ENDPOINT_URL is {endpoint:?})"
        );
    }
}
