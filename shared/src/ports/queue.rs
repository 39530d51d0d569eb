//! The queue contract: SQS semantics (DESIGN §10, §11).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::error::{StoreError, StoreResult};

/// The longest visibility timeout SQS allows, and so ours: 12 hours.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
/// The longest delay SQS allows on send: 15 minutes.
pub const MAX_SEND_DELAY: Duration = Duration::from_secs(15 * 60);
/// SQS takes at most 10 messages per batch call; backends split larger batches.
pub const MAX_BATCH: usize = 10;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutgoingMessage {
    pub body: String,
    /// Invisible for this long after sending (≤ 15 min).
    pub delay: Duration,
    /// String attributes (e.g. `reason` on a dead-lettered message).
    pub attributes: BTreeMap<String, String>,
}

impl OutgoingMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self { body: body.into(), ..Self::default() }
    }

    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

/// A received message. `receipt` deletes it or changes its visibility until it is received again.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
    pub attributes: BTreeMap<String, String>,
}

/// One queue. A message received and not deleted within its visibility timeout is received
/// again; one received more than the queue's max receive count moves to its dead-letter queue
/// with its body and attributes unchanged.
#[async_trait]
pub trait Queue: Send + Sync {
    /// The queue's name (the last path segment of its URL on SQS).
    fn name(&self) -> &str;

    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> StoreResult<()>;

    /// Up to `max` (1..=10) visible messages, waiting up to `wait` (≤ 20 s) for the first.
    /// `visibility` overrides the queue's default visibility timeout for these messages.
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Option<Duration>,
    ) -> StoreResult<Vec<ReceivedMessage>>;

    async fn delete(&self, receipt: &str) -> StoreResult<()>;

    /// Makes the message invisible for `timeout` from now (≤ 12 h, which SQS counts from the
    /// receive, so the total since receiving must stay under 12 h); zero makes it visible at once.
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> StoreResult<()>;

    async fn send(&self, message: OutgoingMessage) -> StoreResult<()> {
        self.send_batch(vec![message]).await
    }
}

/// Checks arguments the same way on every backend.
pub fn check_receive(max: usize, wait: Duration) -> StoreResult<()> {
    if !(1..=MAX_BATCH).contains(&max) {
        return Err(StoreError::Invalid("receive takes 1..=10 messages".into()));
    }
    if wait > Duration::from_secs(20) {
        return Err(StoreError::Invalid("receive waits at most 20 s".into()));
    }
    Ok(())
}

pub fn check_visibility(timeout: Duration) -> StoreResult<()> {
    if timeout > MAX_VISIBILITY {
        return Err(StoreError::Invalid("visibility timeout is at most 12 h".into()));
    }
    Ok(())
}

pub fn check_send(messages: &[OutgoingMessage]) -> StoreResult<()> {
    for m in messages {
        if m.delay > MAX_SEND_DELAY {
            return Err(StoreError::Invalid("send delay is at most 15 min".into()));
        }
        if m.body.len() > 256 * 1024 {
            return Err(StoreError::Invalid("a message body is at most 256 KiB".into()));
        }
    }
    Ok(())
}
