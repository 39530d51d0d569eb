//! The key-value table contract (DESIGN §10), modelled on one DynamoDB table with a GSI.
//!
//! Items carry their own keys, an optional GSI key pair, an optional expiry (epoch seconds)
//! and a version for optimistic concurrency; `data` holds the owner's JSON. An item whose
//! `expires_at` is before the clock's now (in epoch seconds) is invisible to every read and may be
//! overwritten by a create.

use async_trait::async_trait;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{StoreError, StoreResult};

/// One stored item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: Option<String>,
    pub gsi1sk: Option<String>,
    /// Epoch seconds after which the item no longer exists (DynamoDB TTL).
    pub expires_at: Option<i64>,
    /// Starts at 1; each versioned update adds one.
    pub version: u64,
    pub data: Value,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, data: Value) -> Self {
        Self { pk: pk.into(), sk: sk.into(), gsi1pk: None, gsi1sk: None, expires_at: None, version: 1, data }
    }

    pub fn with_gsi1(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi1pk = Some(pk.into());
        self.gsi1sk = Some(sk.into());
        self
    }

    pub fn expiring_at(mut self, epoch_seconds: i64) -> Self {
        self.expires_at = Some(epoch_seconds);
        self
    }

    pub fn key(&self) -> Key {
        Key { pk: self.pk.clone(), sk: self.sk.clone() }
    }

    /// Whether the item is past its expiry at `now` (epoch seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| e < now)
    }
}

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }
}

/// The condition a write must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Unconditional.
    None,
    /// No live item has this key (an expired one counts as absent).
    Absent,
    /// A live item exists with exactly this version.
    Version(u64),
    /// A live item exists, whatever its version.
    Exists,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Writes the item as given (its `version` is stored as is).
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        key: Key,
        condition: Condition,
    },
    /// Writes nothing; fails the transaction unless the condition holds.
    Check {
        key: Key,
        condition: Condition,
    },
}

/// The most operations one transaction may hold (DynamoDB's limit is 100; DESIGN keeps 25).
pub const MAX_TRANSACTION_OPS: usize = 25;

/// Which end of the sort key a query starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Ascending,
    Descending,
}

/// A query over one partition of the table or of `gsi1`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub pk: String,
    /// Only sort keys starting with this.
    pub sk_prefix: String,
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub order: Order,
}

impl Query {
    pub fn new(pk: impl Into<String>, sk_prefix: impl Into<String>, limit: usize) -> Self {
        Self { pk: pk.into(), sk_prefix: sk_prefix.into(), limit, cursor: None, order: Order::Ascending }
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    pub fn descending(mut self) -> Self {
        self.order = Order::Descending;
        self
    }
}

/// A page of items and, when more may follow, the cursor for the next page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub cursor: Option<Cursor>,
}

/// Where a page ended: the last item's keys. Opaque to clients (base64url JSON), and the same
/// on every backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub pk: String,
    pub sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
}

impl Cursor {
    /// The cursor after `item`: for table queries its keys, for gsi1 queries its index keys too.
    pub fn after(item: &Item, index: bool) -> Cursor {
        Cursor {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            gsi1pk: if index { item.gsi1pk.clone() } else { None },
            gsi1sk: if index { item.gsi1sk.clone() } else { None },
        }
    }

    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(s: &str) -> StoreResult<Cursor> {
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| StoreError::InvalidCursor)?;
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)
    }
}

/// The table every repository is written against.
#[async_trait]
pub trait Table: Send + Sync {
    /// The live item with this key, if any.
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>>;

    /// Writes `item` if `condition` holds, else `ConditionFailed`.
    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()>;

    /// Deletes the item if `condition` holds, else `ConditionFailed`. Deleting nothing is fine
    /// with `Condition::None`.
    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<()>;

    /// Items of one partition in sort-key order, at most `limit` (1..=1000) per page.
    async fn query(&self, query: Query) -> StoreResult<Page>;

    /// Items of one `gsi1` partition in `gsi1sk` order.
    async fn query_gsi1(&self, query: Query) -> StoreResult<Page>;

    /// All operations or none: a failed condition cancels every write and names its index.
    async fn transact(&self, ops: Vec<WriteOp>) -> StoreResult<()>;

    /// Several items by key in one call (missing and expired ones left out), for hot paths.
    async fn get_many(&self, keys: &[Key]) -> StoreResult<Vec<Item>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(item) = self.get(key).await? {
                out.push(item);
            }
        }
        Ok(out)
    }
}

/// Checks a write batch before it reaches a backend, so both backends refuse the same input.
pub fn check_transaction(ops: &[WriteOp]) -> StoreResult<()> {
    if ops.is_empty() {
        return Err(StoreError::Invalid("a transaction needs at least one operation".into()));
    }
    if ops.len() > MAX_TRANSACTION_OPS {
        return Err(StoreError::Invalid(format!("a transaction holds at most {MAX_TRANSACTION_OPS} operations")));
    }
    let mut keys = std::collections::HashSet::new();
    for op in ops {
        let key = match op {
            WriteOp::Put { item, .. } => item.key(),
            WriteOp::Delete { key, .. } | WriteOp::Check { key, .. } => key.clone(),
        };
        if !keys.insert(key) {
            return Err(StoreError::Invalid("a transaction may touch each item once".into()));
        }
    }
    Ok(())
}

/// Checks a page size the same way on every backend.
pub fn check_limit(limit: usize) -> StoreResult<usize> {
    if (1..=1000).contains(&limit) { Ok(limit) } else { Err(StoreError::Invalid("limit must be 1..=1000".into())) }
}

/// A cursor must come from a query of the same partition (and index): checked the same way on
/// every backend, since DynamoDB would answer a foreign start key with a generic error.
pub fn check_cursor(query: &Query, index: bool) -> StoreResult<()> {
    let Some(c) = &query.cursor else { return Ok(()) };
    let valid = if index {
        c.gsi1pk.as_deref() == Some(query.pk.as_str()) && c.gsi1sk.is_some()
    } else {
        c.pk == query.pk && c.gsi1pk.is_none()
    };
    if valid { Ok(()) } else { Err(StoreError::InvalidCursor) }
}
