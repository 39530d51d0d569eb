//! `Queue` on one SQS standard queue. Dead-lettering is SQS's own (the queue's RedrivePolicy).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, SendMessageBatchRequestEntry};

use crate::ports::error::{StoreError, StoreResult};
use crate::ports::queue::{
    MAX_BATCH, OutgoingMessage, Queue, ReceivedMessage, check_receive, check_send, check_visibility,
};

/// What one SendMessageBatch may carry in total (bodies and attributes), as SQS counts it.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// One SQS queue, addressed by URL.
pub struct SqsQueue {
    client: Client,
    url: String,
    name: String,
}

impl SqsQueue {
    /// The queue's name is the last path segment of its URL.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        let url = url.into();
        let name = url.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_owned();
        Self { client, url, name }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn sdk_error<E, R>(&self, op: &str, e: &SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StoreError::Unavailable(format!("SQS {op} on {} failed: {}", self.name, DisplayErrorContext(e)))
    }

    /// Errors no retry can fix are `Invalid`: a receipt handle that is malformed, expired or
    /// no longer in flight, or a visibility past SQS's limit (12 h counted from the message's
    /// receipt, not from this call). These calls take no other parameter.
    fn receipt_error<E, R>(&self, op: &str, e: &SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        let Some(se) = e.as_service_error() else { return self.sdk_error(op, e) };
        match se.code() {
            Some("ReceiptHandleIsInvalid" | "AWS.SimpleQueueService.ReceiptHandleIsInvalid")
            | Some("MessageNotInflight" | "AWS.SimpleQueueService.MessageNotInflight") => {
                StoreError::Invalid(format!("SQS {op} on {}: the receipt handle is no longer valid", self.name))
            }
            Some("InvalidParameterValue") => StoreError::Invalid(format!(
                "SQS {op} on {} refused the request: {}",
                self.name,
                se.message().unwrap_or("invalid parameter")
            )),
            _ => self.sdk_error(op, e),
        }
    }
}

/// Whole seconds, rounded up: SQS counts in seconds, and a shorter wait, delay or visibility
/// than asked for would break the caller's expectations.
fn ceil_secs(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// The size SQS charges a message against the batch limit.
fn message_bytes(m: &OutgoingMessage) -> usize {
    // Each attribute also carries its data type ("String").
    m.body.len() + m.attributes.iter().map(|(k, v)| k.len() + v.len() + "String".len()).sum::<usize>()
}

/// Splits messages into SendMessageBatch calls of at most 10 entries and 256 KiB each.
fn batches(messages: Vec<OutgoingMessage>) -> Vec<Vec<OutgoingMessage>> {
    let mut out: Vec<Vec<OutgoingMessage>> = Vec::new();
    let mut current: Vec<OutgoingMessage> = Vec::new();
    let mut bytes = 0;
    for m in messages {
        let size = message_bytes(&m);
        if !current.is_empty() && (current.len() == MAX_BATCH || bytes + size > MAX_BATCH_BYTES) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(m);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[async_trait]
impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    #[tracing::instrument(skip_all, fields(queue = %self.name, messages = messages.len()))]
    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> StoreResult<()> {
        check_send(&messages)?;
        for batch in batches(messages) {
            let mut entries = Vec::with_capacity(batch.len());
            for (i, m) in batch.into_iter().enumerate() {
                let mut entry = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(m.body);
                if !m.delay.is_zero() {
                    entry = entry.delay_seconds(ceil_secs(m.delay));
                }
                for (name, value) in m.attributes {
                    let value =
                        MessageAttributeValue::builder().data_type("String").string_value(value).build().map_err(
                            |e| StoreError::Unavailable(format!("building an SQS message attribute failed: {e}")),
                        )?;
                    entry = entry.message_attributes(name, value);
                }
                entries.push(
                    entry
                        .build()
                        .map_err(|e| StoreError::Unavailable(format!("building an SQS batch entry failed: {e}")))?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.sdk_error("SendMessageBatch", &e))?;
            // Entries of a batch succeed or fail one by one. The caller retries the whole
            // batch, so some messages may arrive twice: SQS delivers at least once anyway.
            if let Some(first) = out.failed().first() {
                return Err(StoreError::Unavailable(format!(
                    "SQS SendMessageBatch on {}: {} of the batch failed, first with {}{}",
                    self.name,
                    out.failed().len(),
                    first.code(),
                    first.message().map(|m| format!(": {m}")).unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(queue = %self.name))]
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Option<Duration>,
    ) -> StoreResult<Vec<ReceivedMessage>> {
        check_receive(max, wait)?;
        if let Some(v) = visibility {
            check_visibility(v)?;
        }
        let wait_seconds = ceil_secs(wait);
        // A long poll holds the response for up to `wait`: the shared per-attempt timeout
        // must not cut it short.
        let poll = Duration::from_secs(u64::from(wait_seconds.unsigned_abs()));
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(poll + Duration::from_secs(5))
            .operation_timeout(poll + Duration::from_secs(12))
            .build();
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(10))
            .wait_time_seconds(wait_seconds)
            .set_visibility_timeout(visibility.map(ceil_secs))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(timeouts))
            .send()
            .await
            .map_err(|e| self.sdk_error("ReceiveMessage", &e))?;

        let mut received = Vec::with_capacity(out.messages().len());
        for m in out.messages() {
            let (Some(id), Some(receipt)) = (m.message_id(), m.receipt_handle()) else {
                return Err(StoreError::Unavailable(format!(
                    "SQS ReceiveMessage on {} returned a message without id or receipt handle",
                    self.name
                )));
            };
            let receive_count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let attributes: BTreeMap<String, String> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| v.string_value().map(|s| (k.clone(), s.to_owned())))
                .collect();
            received.push(ReceivedMessage {
                id: id.to_owned(),
                receipt: receipt.to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count,
                attributes,
            });
        }
        Ok(received)
    }

    #[tracing::instrument(skip_all, fields(queue = %self.name))]
    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| self.receipt_error("DeleteMessage", &e))?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(queue = %self.name))]
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> StoreResult<()> {
        check_visibility(timeout)?;
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(ceil_secs(timeout))
            .send()
            .await
            .map_err(|e| self.receipt_error("ChangeMessageVisibility", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_by_count_and_size() {
        let small: Vec<_> = (0..23).map(|i| OutgoingMessage::new(format!("m{i}"))).collect();
        let sizes: Vec<_> = batches(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 3]);

        let big: Vec<_> = (0..5).map(|_| OutgoingMessage::new("x".repeat(100 * 1024))).collect();
        let sizes: Vec<_> = batches(big).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(20)), 20);
        assert_eq!(ceil_secs(Duration::from_millis(20_001)), 21);
    }
}
