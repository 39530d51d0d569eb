//! Queue consumption, written once for Lambda's SQS batches and the local polling loop.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ports::queue::{OutgoingMessage, Queue, ReceivedMessage};

/// What became of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done: delete it.
    Done,
    /// Try again after `after` (the visibility timeout, ≤ 12 h); None = the queue's default.
    Retry { after: Option<Duration> },
    /// It can never be processed: move it to the dead-letter queue with `reason`, then delete it.
    DeadLetter { reason: String },
}

/// Handles one message; the batch loop around it is shared.
#[async_trait]
pub trait MessageHandler: Send + Sync {
    async fn handle(&self, message: &ReceivedMessage) -> Outcome;
}

/// Applies an outcome to the queue. Returns whether the message must be reported as a batch
/// item failure (Lambda) — i.e. left on the queue for a retry.
pub async fn settle(queue: &dyn Queue, dead_letter: &dyn Queue, message: &ReceivedMessage, outcome: Outcome) -> bool {
    match outcome {
        Outcome::Done => {
            if let Err(e) = queue.delete(&message.receipt).await {
                // Not deleting means a second delivery of the message; handlers are idempotent.
                tracing::warn!(message_id = %message.id, error = %e, "could not delete a processed message");
            }
            false
        }
        Outcome::Retry { after } => {
            if let Some(after) = after
                && let Err(e) = queue.change_visibility(&message.receipt, after).await
            {
                tracing::warn!(message_id = %message.id, error = %e, "could not set the retry delay");
            }
            true
        }
        Outcome::DeadLetter { reason } => {
            tracing::error!(message_id = %message.id, reason = %reason, queue = queue.name(), "message moved to the dead-letter queue");
            let mut dead = OutgoingMessage::new(message.body.clone()).with_attribute("reason", truncate(&reason, 900));
            dead.attributes.extend(message.attributes.clone());
            dead.attributes.insert("reason".into(), truncate(&reason, 900));
            match dead_letter.send(dead).await {
                Ok(()) => {
                    let _ = queue.delete(&message.receipt).await;
                    false
                }
                Err(e) => {
                    // Keep it: losing a message is worse than seeing it again.
                    tracing::error!(message_id = %message.id, error = %e, "could not dead-letter a message; it stays queued");
                    true
                }
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The local process's consumer: polls `queue` until `shutdown` fires, handling up to
/// `concurrency` messages at once; in-flight messages finish before it returns. With a
/// concurrency of 1 it takes batches of up to 10 and handles them strictly in queue order
/// (ingest: rows of one run must reach its metric windows in step order).
pub async fn run_local_worker(
    queue: Arc<dyn Queue>,
    dead_letter: Arc<dyn Queue>,
    handler: Arc<dyn MessageHandler>,
    concurrency: usize,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let ordered = concurrency <= 1;
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let want = if ordered { 10 } else { limit.available_permits().clamp(1, 10) };
        let received = tokio::select! {
            r = queue.receive(want, Duration::from_secs(1), None) => r,
            _ = shutdown.changed() => break,
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(queue = queue.name(), error = %e, "receive failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if ordered {
            // Received messages are finished even when shutdown comes meanwhile: nothing in hand
            // is dropped, and a message not yet handled would only wait out its visibility.
            for message in messages {
                let outcome = handler.handle(&message).await;
                settle(queue.as_ref(), dead_letter.as_ref(), &message, outcome).await;
            }
            continue;
        }
        for message in messages {
            let Ok(permit) = Arc::clone(&limit).acquire_owned().await else { break };
            let (queue, dead_letter, handler) = (Arc::clone(&queue), Arc::clone(&dead_letter), Arc::clone(&handler));
            tasks.spawn(async move {
                let outcome = handler.handle(&message).await;
                settle(queue.as_ref(), dead_letter.as_ref(), &message, outcome).await;
                drop(permit);
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}
