//! The deliver function: SQS deliveries queue → webhook / Slack message, attempts recorded.
//! Wiring only: each record goes to `DeliverHandler`, and its outcome is settled the Lambda way
//! (a record not reported as a batch item failure is deleted by Lambda).

use std::collections::BTreeMap;
use std::sync::Arc;

use automations::app::deliver::DeliverHandler;
use automations::app::worker::{MessageHandler, Outcome, settle};
use automations::ports::queue::{Queue, ReceivedMessage};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    automations::startup::init_tracing();
    let app = automations::startup::or_exit(automations::startup::aws_app_from_env().await);
    let handler: Arc<dyn MessageHandler> = Arc::new(DeliverHandler::new(app.clone()));
    let (deliveries, dead_letter) = (app.deliveries, app.deliveries_dlq);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (handler, deliveries, dead_letter) = (handler.clone(), deliveries.clone(), dead_letter.clone());
        async move {
            Ok::<_, Error>(
                handle_batch(event.payload, handler.as_ref(), deliveries.as_ref(), dead_letter.as_ref()).await,
            )
        }
    }))
    .await
}

/// JSON lines when `LOG_FORMAT=json` (CloudWatch), text otherwise; `RUST_LOG` filters.
/// Handles the records of one batch concurrently (each may wait up to the send timeout) and
/// reports those that must come back.
async fn handle_batch(
    event: SqsEvent,
    handler: &dyn MessageHandler,
    queue: &dyn Queue,
    dead_letter: &dyn Queue,
) -> SqsBatchResponse {
    let records = event.records.into_iter().map(|record| handle_record(record, handler, queue, dead_letter));
    let mut response = SqsBatchResponse::default();
    for failed in futures::future::join_all(records).await.into_iter().flatten() {
        response.add_failure(failed);
    }
    response
}

/// Handles one record; returns its message id when it must stay on the queue.
async fn handle_record(
    record: SqsMessage,
    handler: &dyn MessageHandler,
    queue: &dyn Queue,
    dead_letter: &dyn Queue,
) -> Option<String> {
    let Some(message) = received(record) else {
        // Without an id it cannot be reported; SQS always sends one.
        tracing::error!("SQS record without a message id skipped");
        return None;
    };
    match handler.handle(&message).await {
        // Lambda deletes every record that is not reported: no DeleteMessage call needed.
        Outcome::Done => None,
        // Retry: ChangeMessageVisibility + a batch item failure; DeadLetter: to the DLQ, then
        // success (or a failure when the DLQ cannot take it, so nothing is lost).
        outcome => settle(queue, dead_letter, &message, outcome).await.then_some(message.id),
    }
}

/// The queue port's view of an SQS record.
fn received(record: SqsMessage) -> Option<ReceivedMessage> {
    let id = record.message_id?;
    let receive_count = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
    let attributes: BTreeMap<String, String> = record
        .message_attributes
        .into_iter()
        .filter_map(|(name, value)| value.string_value.map(|v| (name, v)))
        .collect();
    Some(ReceivedMessage {
        id,
        receipt: record.receipt_handle.unwrap_or_default(),
        body: record.body.unwrap_or_default(),
        receive_count,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use automations::ports::error::{StoreError, StoreResult};
    use automations::ports::queue::OutgoingMessage;
    use serde_json::json;

    use super::*;

    /// Answers each message with the outcome its body names.
    struct ByBody;

    #[async_trait]
    impl MessageHandler for ByBody {
        async fn handle(&self, message: &ReceivedMessage) -> Outcome {
            match message.body.as_str() {
                "retry" => Outcome::Retry { after: Some(Duration::from_secs(5)) },
                "poison" => Outcome::DeadLetter { reason: "not a delivery job".into() },
                _ => Outcome::Done,
            }
        }
    }

    /// Records the calls a settle makes.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        sent: Mutex<Vec<OutgoingMessage>>,
        fail_sends: bool,
    }

    #[async_trait]
    impl Queue for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> StoreResult<()> {
            if self.fail_sends {
                return Err(StoreError::Unavailable("down".into()));
            }
            self.sent.lock().unwrap().extend(messages);
            Ok(())
        }
        async fn receive(&self, _: usize, _: Duration, _: Option<Duration>) -> StoreResult<Vec<ReceivedMessage>> {
            Ok(vec![])
        }
        async fn delete(&self, receipt: &str) -> StoreResult<()> {
            self.calls.lock().unwrap().push(format!("delete {receipt}"));
            Ok(())
        }
        async fn change_visibility(&self, receipt: &str, timeout: Duration) -> StoreResult<()> {
            self.calls.lock().unwrap().push(format!("visibility {receipt} {}s", timeout.as_secs()));
            Ok(())
        }
    }

    fn record(id: &str, body: &str) -> serde_json::Value {
        json!({
            "messageId": id,
            "receiptHandle": format!("rh-{id}"),
            "body": body,
            "attributes": {"ApproximateReceiveCount": "2"},
            "messageAttributes": {"origin": {"stringValue": "test", "dataType": "String"}},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:automations-deliveries",
            "awsRegion": "us-east-1"
        })
    }

    fn event(records: Vec<serde_json::Value>) -> SqsEvent {
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn failures(response: &SqsBatchResponse) -> Vec<String> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
    }

    #[tokio::test]
    async fn a_done_record_is_left_for_lambda_to_delete() {
        let (queue, dlq) = (Recorder::default(), Recorder::default());
        let response = handle_batch(event(vec![record("m1", "ok")]), &ByBody, &queue, &dlq).await;
        assert!(failures(&response).is_empty());
        assert!(queue.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_retry_hides_the_record_for_the_delay_and_reports_it_failed() {
        let (queue, dlq) = (Recorder::default(), Recorder::default());
        let response =
            handle_batch(event(vec![record("m1", "ok"), record("m2", "retry")]), &ByBody, &queue, &dlq).await;
        assert_eq!(failures(&response), ["m2"]);
        assert_eq!(*queue.calls.lock().unwrap(), ["visibility rh-m2 5s"]);
    }

    #[tokio::test]
    async fn a_poison_record_goes_to_the_dead_letter_queue_with_its_reason() {
        let (queue, dlq) = (Recorder::default(), Recorder::default());
        let response = handle_batch(event(vec![record("m1", "poison")]), &ByBody, &queue, &dlq).await;
        assert!(failures(&response).is_empty());
        let sent = dlq.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].body, "poison");
        assert_eq!(sent[0].attributes["reason"], "not a delivery job");
        assert_eq!(sent[0].attributes["origin"], "test");
    }

    #[tokio::test]
    async fn a_poison_record_stays_queued_when_the_dead_letter_queue_is_down() {
        let queue = Recorder::default();
        let dlq = Recorder { fail_sends: true, ..Recorder::default() };
        let response = handle_batch(event(vec![record("m1", "poison")]), &ByBody, &queue, &dlq).await;
        assert_eq!(failures(&response), ["m1"]);
    }

    #[test]
    fn records_become_queue_messages() {
        let record: SqsMessage = serde_json::from_value(record("m1", "{}")).unwrap();
        let message = received(record).unwrap();
        assert_eq!(message.id, "m1");
        assert_eq!(message.receipt, "rh-m1");
        assert_eq!(message.receive_count, 2);
        assert_eq!(message.attributes["origin"], "test");
    }
}
