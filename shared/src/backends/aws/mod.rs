//! The AWS backends (DESIGN §10): DynamoDB `Table`, SQS `Queue`, Secrets Manager `SecretStore`,
//! plus the resource creation behind `automations --create-resources`.

pub mod dynamodb;
pub mod secretsmanager;
pub mod sqs;

use std::collections::HashMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::ports::error::{StoreError, StoreResult};

pub use dynamodb::DynamoTable;
pub use secretsmanager::SecretsManagerStore;
pub use sqs::SqsQueue;

/// Connect timeout: a dead endpoint should fail fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One HTTP attempt. Without it a backend that accepts the connection and never answers (a
/// stopped moto, a network black hole) hangs the caller forever. SQS long polls raise it per call.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// All attempts of one call together, retries included: short enough that an outage surfaces
/// as `Unavailable` well within the 30 s shutdown budget (DESIGN §11).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(12);

/// The shared SDK configuration: region, credentials and `AWS_ENDPOINT_URL` from the
/// environment, with timeouts so an unresponsive backend becomes `StoreError::Unavailable`.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// How long `create_table` waits for a new table (and its index) to become ACTIVE.
const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(300);

fn build_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("building a request failed: {e}"))
}

/// Creates the service table (DESIGN §10) if it does not exist, waits until it is ACTIVE, then
/// turns on TTL on `expires_at` and point-in-time recovery. An existing table is fine. TTL and
/// PITR failures only log a warning: emulators (moto) lack some of these calls, and the table
/// works without them (reads filter expired items anyway).
#[tracing::instrument(skip_all, fields(table = name))]
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> StoreResult<()> {
    use aws_sdk_dynamodb::error::DisplayErrorContext;
    use aws_sdk_dynamodb::operation::create_table::CreateTableError;

    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_error)
    };
    let key =
        |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build().map_err(build_error);
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(dynamodb::GSI1)
        .key_schema(key("gsi1pk", KeyType::Hash)?)
        .key_schema(key("gsi1sk", KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(build_error)?;
    let created = client
        .create_table()
        .table_name(name)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!("created DynamoDB table"),
        Err(e) => match e.into_service_error() {
            CreateTableError::ResourceInUseException(_) => tracing::info!("DynamoDB table exists already"),
            e => {
                return Err(StoreError::Unavailable(format!(
                    "DynamoDB CreateTable {name} failed: {}",
                    DisplayErrorContext(&e)
                )));
            }
        },
    }

    wait_for_active_table(client, name).await?;

    // UpdateTimeToLive fails when TTL is already on, so ask first.
    let ttl_on = match client.describe_time_to_live().table_name(name).send().await {
        Ok(out) => out
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status())
            .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)),
        Err(e) => {
            tracing::warn!(error = %DisplayErrorContext(&e), "DescribeTimeToLive failed; trying to enable TTL anyway");
            false
        }
    };
    if !ttl_on {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name("expires_at")
            .enabled(true)
            .build()
            .map_err(build_error)?;
        if let Err(e) = client.update_time_to_live().table_name(name).time_to_live_specification(spec).send().await {
            tracing::warn!(error = %DisplayErrorContext(&e), "could not enable TTL on expires_at; expired items stay until deleted");
        }
    }

    let pitr = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .map_err(build_error)?;
    if let Err(e) =
        client.update_continuous_backups().table_name(name).point_in_time_recovery_specification(pitr).send().await
    {
        tracing::warn!(error = %DisplayErrorContext(&e), "could not enable point-in-time recovery");
    }
    Ok(())
}

/// Real DynamoDB creates tables asynchronously and refuses TTL/PITR changes until the table is
/// ACTIVE; the GSI must be ACTIVE before it can be queried.
async fn wait_for_active_table(client: &aws_sdk_dynamodb::Client, name: &str) -> StoreResult<()> {
    use aws_sdk_dynamodb::error::DisplayErrorContext;
    use aws_sdk_dynamodb::types::IndexStatus;

    let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_WAIT;
    loop {
        let out = client.describe_table().table_name(name).send().await.map_err(|e| {
            StoreError::Unavailable(format!("DynamoDB DescribeTable {name} failed: {}", DisplayErrorContext(&e)))
        })?;
        let table = out.table();
        let table_active = table.and_then(|t| t.table_status()) == Some(&TableStatus::Active);
        let indexes_active = table
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active));
        if table_active && indexes_active {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Unavailable(format!(
                "DynamoDB table {name} did not become ACTIVE within {} s",
                TABLE_ACTIVE_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// How long the dead-letter queue keeps messages: SQS's maximum, 14 days, so a dead letter
/// is there to inspect long after the main queue's retention would have dropped it.
const DLQ_RETENTION_SECONDS: u32 = 14 * 24 * 3600;

/// Creates `<name>-dlq` and `<name>` with a RedrivePolicy to it, and returns both URLs (queue,
/// dlq). Existing queues are fine: their attributes are set to the requested ones.
#[tracing::instrument(skip_all, fields(queue = name))]
pub async fn create_queue_with_dlq(
    client: &aws_sdk_sqs::Client,
    name: &str,
    visibility_timeout: Duration,
    max_receive_count: u32,
) -> StoreResult<(String, String)> {
    use aws_sdk_sqs::error::DisplayErrorContext;

    if visibility_timeout > crate::ports::queue::MAX_VISIBILITY {
        return Err(StoreError::Invalid("visibility timeout is at most 12 h".into()));
    }
    if !(1..=1000).contains(&max_receive_count) {
        return Err(StoreError::Invalid("max receive count must be 1..=1000".into()));
    }
    let dlq_name = format!("{name}-dlq");
    let dlq_url = ensure_queue(
        client,
        &dlq_name,
        HashMap::from([(QueueAttributeName::MessageRetentionPeriod, DLQ_RETENTION_SECONDS.to_string())]),
    )
    .await?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| {
            StoreError::Unavailable(format!("SQS GetQueueAttributes {dlq_name} failed: {}", DisplayErrorContext(&e)))
        })?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| StoreError::Unavailable(format!("SQS did not return the ARN of {dlq_name}")))?;
    let redrive =
        serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count }).to_string();
    let visibility = visibility_timeout.as_secs() + u64::from(visibility_timeout.subsec_nanos() > 0);
    let url = ensure_queue(
        client,
        name,
        HashMap::from([
            (QueueAttributeName::VisibilityTimeout, visibility.to_string()),
            (QueueAttributeName::RedrivePolicy, redrive),
        ]),
    )
    .await?;
    Ok((url, dlq_url))
}

/// CreateQueue returns the existing queue's URL when the attributes match, and fails with
/// QueueNameExists when they differ; then the queue's attributes are updated instead.
async fn ensure_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> StoreResult<String> {
    use aws_sdk_sqs::error::DisplayErrorContext;
    use aws_sdk_sqs::operation::create_queue::CreateQueueError;

    let created = client.create_queue().queue_name(name).set_attributes(Some(attributes.clone())).send().await;
    match created {
        Ok(out) => out
            .queue_url()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Unavailable(format!("SQS CreateQueue {name} returned no URL"))),
        Err(e) => match e.into_service_error() {
            CreateQueueError::QueueNameExists(_) => {
                let url = client
                    .get_queue_url()
                    .queue_name(name)
                    .send()
                    .await
                    .map_err(|e| {
                        StoreError::Unavailable(format!("SQS GetQueueUrl {name} failed: {}", DisplayErrorContext(&e)))
                    })?
                    .queue_url()
                    .map(str::to_owned)
                    .ok_or_else(|| StoreError::Unavailable(format!("SQS GetQueueUrl {name} returned no URL")))?;
                client.set_queue_attributes().queue_url(&url).set_attributes(Some(attributes)).send().await.map_err(
                    |e| {
                        StoreError::Unavailable(format!(
                            "SQS SetQueueAttributes {name} failed: {}",
                            DisplayErrorContext(&e)
                        ))
                    },
                )?;
                Ok(url)
            }
            e => Err(StoreError::Unavailable(format!("SQS CreateQueue {name} failed: {}", DisplayErrorContext(&e)))),
        },
    }
}
