//! `Queue` on SQLite, with SQS semantics: visibility timeouts, receive counts, a redrive to a
//! dead-letter queue after the max receive count, delays up to 15 min, visibility up to 12 h.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{SqliteDb, sql};
use crate::ports::error::{StoreError, StoreResult};
use crate::ports::queue::{OutgoingMessage, Queue, ReceivedMessage, check_receive, check_send, check_visibility};

/// A queue's settings, as SQS keeps them on the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// 60 s by default, as DESIGN §11 says for the local queue (SQS's default is 30 s).
    pub visibility_timeout: Duration,
    /// After this many receives, the next receive moves the message to `dead_letter_queue`.
    pub max_receive_count: Option<u32>,
    pub dead_letter_queue: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { visibility_timeout: Duration::from_secs(60), max_receive_count: None, dead_letter_queue: None }
    }
}

impl QueueConfig {
    /// A queue that dead-letters to `<name>-dlq` after `max_receive_count` receives.
    pub fn with_dead_letter(name: &str, max_receive_count: u32) -> Self {
        Self {
            max_receive_count: Some(max_receive_count),
            dead_letter_queue: Some(format!("{name}-dlq")),
            ..Self::default()
        }
    }
}

/// One named queue in the database file.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Arc<SqliteDb>,
    name: String,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    // getrandom only fails when the OS has no entropy source; a time-based id still works then.
    if getrandom::fill(&mut bytes).is_err() {
        return ulid::Ulid::generate().to_string();
    }
    hex::encode(bytes)
}

impl SqliteQueue {
    /// Creates the queue (and its dead-letter queue) or updates its settings.
    pub async fn create(db: Arc<SqliteDb>, name: &str, config: QueueConfig) -> StoreResult<SqliteQueue> {
        let queue = SqliteQueue { db, name: name.to_owned() };
        let owned = name.to_owned();
        queue
            .db
            .call(move |conn, _| {
                let upsert = "INSERT INTO queues (name, visibility_ms, max_receive_count, dead_letter_queue) VALUES (?1, ?2, ?3, ?4) \
                              ON CONFLICT(name) DO UPDATE SET visibility_ms = ?2, max_receive_count = ?3, dead_letter_queue = ?4";
                if let Some(dlq) = &config.dead_letter_queue {
                    conn.execute(
                        "INSERT OR IGNORE INTO queues (name, visibility_ms) VALUES (?1, ?2)",
                        params![dlq, config.visibility_timeout.as_millis() as i64],
                    )
                    .map_err(sql)?;
                }
                conn.execute(
                    upsert,
                    params![
                        owned,
                        config.visibility_timeout.as_millis() as i64,
                        config.max_receive_count,
                        config.dead_letter_queue
                    ],
                )
                .map_err(sql)?;
                Ok(())
            })
            .await?;
        Ok(queue)
    }

    /// The queue `name`, which must have been created.
    pub async fn open(db: Arc<SqliteDb>, name: &str) -> StoreResult<SqliteQueue> {
        let owned = name.to_owned();
        let exists = db
            .call(move |conn, _| {
                conn.query_row("SELECT 1 FROM queues WHERE name = ?1", params![owned], |_| Ok(()))
                    .optional()
                    .map_err(sql)
            })
            .await?;
        match exists {
            Some(()) => Ok(SqliteQueue { db, name: name.to_owned() }),
            None => Err(StoreError::Invalid(format!("queue {name} does not exist"))),
        }
    }

    /// Messages waiting (visible or not), for tests and metrics.
    pub async fn depth(&self) -> StoreResult<u64> {
        let name = self.name.clone();
        self.db
            .call(move |conn, _| {
                conn.query_row("SELECT COUNT(*) FROM queue_messages WHERE queue = ?1", params![name], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as u64)
                .map_err(sql)
            })
            .await
    }

    fn try_receive(
        &self,
        max: usize,
        visibility: Option<Duration>,
    ) -> impl Future<Output = StoreResult<Vec<ReceivedMessage>>> + Send + 'static {
        let name = self.name.clone();
        let db = Arc::clone(&self.db);
        async move {
            db.call(move |conn, _| {
                let now = now_ms();
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
                let (default_visibility_ms, max_receive, dlq): (i64, Option<u32>, Option<String>) = tx
                    .query_row(
                        "SELECT visibility_ms, max_receive_count, dead_letter_queue FROM queues WHERE name = ?1",
                        params![name],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map_err(sql)?;
                let visibility_ms = visibility.map_or(default_visibility_ms, |v| v.as_millis() as i64);
                let candidates: Vec<(String, String, String, u32)> = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT id, body, attributes, receive_count FROM queue_messages \
                             WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY visible_at_ms, sent_at_ms LIMIT ?3",
                        )
                        .map_err(sql)?;
                    let rows = stmt
                        .query_map(params![name, now, (max * 4) as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .map_err(sql)?;
                    rows.collect::<Result<_, _>>().map_err(sql)?
                };
                let mut out = Vec::new();
                for (id, body, attributes, count) in candidates {
                    if out.len() == max {
                        break;
                    }
                    if let (Some(max_receive), Some(dlq)) = (max_receive, dlq.as_deref())
                        && count >= max_receive {
                            // SQS moves it on the receive after the last allowed one, body and attributes intact.
                            tx.execute(
                                "UPDATE queue_messages SET queue = ?1, receive_count = 0, receipt = NULL, visible_at_ms = ?2 \
                                 WHERE queue = ?3 AND id = ?4",
                                params![dlq, now, name, id],
                            )
                            .map_err(sql)?;
                            continue;
                        }
                    let receipt = random_token();
                    tx.execute(
                        "UPDATE queue_messages SET receive_count = receive_count + 1, receipt = ?1, visible_at_ms = ?2 \
                         WHERE queue = ?3 AND id = ?4",
                        params![receipt, now + visibility_ms, name, id],
                    )
                    .map_err(sql)?;
                    let attributes: BTreeMap<String, String> = serde_json::from_str(&attributes).map_err(StoreError::corrupt)?;
                    out.push(ReceivedMessage { id, receipt, body, receive_count: count + 1, attributes });
                }
                tx.commit().map_err(sql)?;
                Ok(out)
            })
            .await
        }
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> StoreResult<()> {
        check_send(&messages)?;
        if messages.is_empty() {
            return Ok(());
        }
        let name = self.name.clone();
        self.db
            .call(move |conn, _| {
                let now = now_ms();
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
                {
                    let mut stmt = tx
                        .prepare_cached(
                            "INSERT INTO queue_messages (queue, id, body, attributes, visible_at_ms, receive_count, sent_at_ms) \
                             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                        )
                        .map_err(sql)?;
                    for m in &messages {
                        let attributes = serde_json::to_string(&m.attributes).map_err(StoreError::corrupt)?;
                        let id = ulid::Ulid::generate().to_string();
                        stmt.execute(params![name, id, m.body, attributes, now + m.delay.as_millis() as i64, now])
                            .map_err(sql)?;
                    }
                }
                tx.commit().map_err(sql)
            })
            .await?;
        self.db.sent.notify_waiters();
        Ok(())
    }

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
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a send between the look and the wait wakes us.
            let notified = self.db.sent.notified();
            let got = self.try_receive(max, visibility).await?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            // Delayed messages and other processes' sends are not notified: poll as a fallback.
            let nap = (deadline - now).min(Duration::from_millis(200));
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        let receipt = receipt.to_owned();
        let name = self.name.clone();
        self.db
            .call(move |conn, _| {
                conn.execute("DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2", params![name, receipt])
                    .map_err(sql)?;
                Ok(())
            })
            .await
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> StoreResult<()> {
        check_visibility(timeout)?;
        let receipt = receipt.to_owned();
        let name = self.name.clone();
        let changed = self
            .db
            .call(move |conn, _| {
                conn.execute(
                    "UPDATE queue_messages SET visible_at_ms = ?1 WHERE queue = ?2 AND receipt = ?3",
                    params![now_ms() + timeout.as_millis() as i64, name, receipt],
                )
                .map_err(sql)
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::Invalid("receipt handle is not valid (message deleted or received again)".into()));
        }
        if timeout.is_zero() {
            self.db.sent.notify_waiters();
        }
        Ok(())
    }
}
