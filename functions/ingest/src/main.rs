//! The ingest Lambda: SQS events queue → `IngestHandler` → executions and delivery jobs.
//! Wiring only: tracing, the App from the environment, and the SQS batch around the handler.

use std::collections::BTreeMap;
use std::convert::Infallible;

use automations::app::App;
use automations::app::ingest::IngestHandler;
use automations::app::worker::{MessageHandler, Outcome};
use automations::ports::queue::{OutgoingMessage, ReceivedMessage};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let app = match automations::startup::aws_app_from_env().await {
        Ok(app) => app,
        Err(e) => {
            // One clear line, then a non-zero exit: Lambda reports an init error.
            tracing::error!(error = %e, "ingest cannot start");
            std::process::exit(1);
        }
    };
    let handler = IngestHandler::new(app.clone());
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let (app, handler) = (&app, &handler);
        async move { Ok::<_, Infallible>(handle_batch(app, handler, event.payload).await) }
    }))
    .await
}

/// Logs as JSON when `LOG_FORMAT=json` (CloudWatch), as text otherwise; `RUST_LOG` filters.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
}

/// Handles the records one by one, in order (rows of one run usually arrive in step order, and
/// windows ignore a step below the last one), and reports the ones to retry.
async fn handle_batch(app: &App, handler: &dyn MessageHandler, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if handle_record(app, handler, record).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Handles one record; true when it must stay on the queue (a batch item failure). Lambda
/// deletes the others, so nothing is deleted here.
async fn handle_record(app: &App, handler: &dyn MessageHandler, record: SqsMessage) -> bool {
    let message = ReceivedMessage {
        id: record.message_id.unwrap_or_default(),
        receipt: record.receipt_handle.unwrap_or_default(),
        body: record.body.unwrap_or_default(),
        receive_count: record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1),
        attributes: record
            .message_attributes
            .into_iter()
            .filter_map(|(name, a)| a.string_value.map(|v| (name, v)))
            .collect::<BTreeMap<_, _>>(),
    };
    match handler.handle(&message).await {
        Outcome::Done => false,
        Outcome::Retry { after } => {
            if let Some(after) = after
                && let Err(e) = app.events.change_visibility(&message.receipt, after).await
            {
                tracing::warn!(message_id = %message.id, error = %e, "could not set the retry delay");
            }
            true
        }
        Outcome::DeadLetter { reason } => {
            tracing::error!(message_id = %message.id, reason = %reason, "event moved to the dead-letter queue");
            let mut dead = OutgoingMessage::new(message.body.clone());
            dead.attributes = message.attributes.clone();
            dead.attributes.insert("reason".into(), reason);
            match app.events_dlq.send(dead).await {
                Ok(()) => false,
                Err(e) => {
                    // Keep it on the queue: losing an event is worse than seeing it again.
                    tracing::error!(message_id = %message.id, error = %e, "could not dead-letter an event; it stays queued");
                    true
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use automations::app::config::Config;
    use automations::ports::clock::{Clock, SystemClock};
    use automations::startup::{build_app, sqlite_ports};
    use serde_json::json;

    use super::*;

    async fn app(dir: &tempfile::TempDir) -> App {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let config = Config::local("http://127.0.0.1:8080");
        let ports = sqlite_ports(dir.path(), clock.clone(), &config).await.unwrap();
        build_app(ports, clock, config).unwrap()
    }

    fn sqs_event(bodies: &[&str]) -> SqsEvent {
        let records: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                json!({"messageId": format!("m{i}"), "receiptHandle": format!("r{i}"), "body": body,
                       "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                       "eventSource": "aws:sqs", "awsRegion": "eu-west-1"})
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    #[tokio::test]
    async fn a_poison_record_is_dead_lettered_with_its_reason_and_not_reported_as_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(&dir).await;
        let handler = IngestHandler::new(app.clone());
        let good = json!({"id":"e1","type":"CREATE_ARTIFACT","team":"t","project":"p",
                          "artifact":{"collection":"c","version":"v1"}})
        .to_string();
        let response = handle_batch(&app, &handler, sqs_event(&[&good, "not json", r#"{"id":"e2"}"#])).await;
        assert!(response.batch_item_failures.is_empty());
        let dead = app.events_dlq.receive(10, Duration::ZERO, None).await.unwrap();
        let mut reasons: Vec<_> = dead.iter().map(|m| m.attributes["reason"].clone()).collect();
        reasons.sort();
        assert_eq!(reasons.len(), 2);
        assert!(reasons[0].starts_with("invalid event: ") && reasons[0].contains("`type`"), "{reasons:?}");
        assert!(reasons[1].starts_with("not JSON"), "{reasons:?}");
    }

    struct AlwaysRetry;

    #[async_trait::async_trait]
    impl MessageHandler for AlwaysRetry {
        async fn handle(&self, _message: &ReceivedMessage) -> Outcome {
            Outcome::Retry { after: None }
        }
    }

    #[tokio::test]
    async fn records_to_retry_are_reported_by_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(&dir).await;
        let response = handle_batch(&app, &AlwaysRetry, sqs_event(&["{}", "{}"])).await;
        let ids: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(ids, ["m0", "m1"]);
    }
}
