//! The embedded backend: one SQLite file in WAL mode holds the table, the queues and the
//! encrypted secrets, with the same semantics as DynamoDB, SQS and Secrets Manager.
//!
//! rusqlite is synchronous: every call runs on tokio's blocking pool behind one connection.
//! One writer is what SQLite allows anyway, and WAL lets other processes read meanwhile.

mod queue;
mod secrets;
mod table;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Notify;

pub use queue::{QueueConfig, SqliteQueue};
pub use secrets::SqliteSecrets;
pub use table::SqliteTable;

use crate::ports::clock::Clock;
use crate::ports::error::{StoreError, StoreResult};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    gsi1pk TEXT,
    gsi1sk TEXT,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    visibility_ms INTEGER NOT NULL,
    max_receive_count INTEGER,
    dead_letter_queue TEXT
);
CREATE TABLE IF NOT EXISTS queue_messages (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    sent_at_ms INTEGER NOT NULL,
    PRIMARY KEY (queue, id)
);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (queue, visible_at_ms);
CREATE UNIQUE INDEX IF NOT EXISTS queue_messages_receipt ON queue_messages (receipt);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL
);
"#;

/// The open database file, shared by the table, queues and secret store of one process.
pub struct SqliteDb {
    conn: Mutex<Connection>,
    path: PathBuf,
    clock: Arc<dyn Clock>,
    /// Wakes receivers in this process when a message is sent, so local delivery is not
    /// bound to a polling interval.
    sent: Notify,
}

impl SqliteDb {
    /// Opens (creating if needed) the database at `path` in WAL mode.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> StoreResult<Arc<SqliteDb>> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::unavailable(format!("creating {}: {e}", dir.display())))?;
        }
        let conn =
            Connection::open(path).map_err(|e| StoreError::unavailable(format!("opening {}: {e}", path.display())))?;
        // Another process (or a crashed one's leftovers) may hold the write lock briefly.
        conn.busy_timeout(Duration::from_secs(5)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sql)?;
        // Reads through a memory map and a 64 MiB page cache instead of a pread per page: the
        // profile of the local process was dominated by page-read syscalls.
        conn.pragma_update(None, "mmap_size", 256 * 1024 * 1024).map_err(sql)?;
        conn.pragma_update(None, "cache_size", -65_536).map_err(sql)?;
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Arc::new(SqliteDb { conn: Mutex::new(conn), path: path.to_owned(), clock, sent: Notify::new() }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn call<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SqliteDb) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut conn = db.conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn, &db)
        })
        .await
        .map_err(|e| StoreError::unavailable(format!("sqlite worker: {e}")))?
    }

    fn now_seconds(&self) -> i64 {
        self.clock.now().as_second()
    }
}

/// SQLite errors are storage faults; a busy database is worth retrying.
pub(crate) fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}
