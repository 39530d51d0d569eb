//! `Table` on SQLite: one `items` table, with a partial index standing in for `gsi1`.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{SqliteDb, sql};
use crate::ports::error::{StoreError, StoreResult};
use crate::ports::table::{
    Condition, Cursor, Item, Key, Order, Page, Query, Table, WriteOp, check_cursor, check_limit, check_transaction,
};

/// The table of the embedded backend.
#[derive(Clone)]
pub struct SqliteTable {
    db: Arc<SqliteDb>,
}

impl SqliteTable {
    pub fn new(db: Arc<SqliteDb>) -> Self {
        Self { db }
    }
}

const COLUMNS: &str = "pk, sk, gsi1pk, gsi1sk, expires_at, version, data";

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<(Item, String)> {
    let data: String = row.get(6)?;
    Ok((
        Item {
            pk: row.get(0)?,
            sk: row.get(1)?,
            gsi1pk: row.get(2)?,
            gsi1sk: row.get(3)?,
            expires_at: row.get(4)?,
            version: row.get::<_, i64>(5)? as u64,
            data: serde_json::Value::Null,
        },
        data,
    ))
}

fn decode((mut item, data): (Item, String)) -> StoreResult<Item> {
    item.data = serde_json::from_str(&data).map_err(StoreError::corrupt)?;
    Ok(item)
}

/// The live item with `key`, if any (expired items are treated as absent).
fn get_live(tx: &Transaction<'_>, key: &Key, now: i64) -> StoreResult<Option<Item>> {
    let row = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM items WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at >= ?3)"
        ))
        .map_err(sql)?
        .query_row(params![key.pk, key.sk, now], item_from_row)
        .optional()
        .map_err(sql)?;
    row.map(decode).transpose()
}

fn holds(condition: Condition, current: Option<&Item>) -> bool {
    match condition {
        Condition::None => true,
        Condition::Absent => current.is_none(),
        Condition::Exists => current.is_some(),
        Condition::Version(v) => current.is_some_and(|i| i.version == v),
    }
}

fn write_put(tx: &Transaction<'_>, item: &Item) -> StoreResult<()> {
    let data = serde_json::to_string(&item.data).map_err(StoreError::corrupt)?;
    tx.prepare_cached(&format!("INSERT OR REPLACE INTO items ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"))
        .map_err(sql)?
        .execute(params![item.pk, item.sk, item.gsi1pk, item.gsi1sk, item.expires_at, item.version as i64, data])
        .map_err(sql)?;
    Ok(())
}

fn write_delete(tx: &Transaction<'_>, key: &Key) -> StoreResult<()> {
    tx.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
        .map_err(sql)?
        .execute(params![key.pk, key.sk])
        .map_err(sql)?;
    Ok(())
}

/// The exclusive upper bound of keys starting with `prefix` (UTF-8 byte order).
fn prefix_end(prefix: &str) -> Option<String> {
    (!prefix.is_empty()).then(|| format!("{prefix}\u{10FFFF}"))
}

fn run_query(db: &SqliteDb, conn: &rusqlite::Connection, q: &Query, index: bool) -> StoreResult<Page> {
    let limit = check_limit(q.limit)?;
    let now = db.now_seconds();
    let (pk_col, sk_col) = if index { ("gsi1pk", "gsi1sk") } else { ("pk", "sk") };
    let (cmp, dir) = match q.order {
        Order::Ascending => (">", "ASC"),
        Order::Descending => ("<", "DESC"),
    };
    // Index order ties are broken by the table key, as DynamoDB does for a GSI cursor.
    let order = if index { format!("{sk_col} {dir}, pk {dir}, sk {dir}") } else { format!("sk {dir}") };
    let mut sql_text = format!(
        "SELECT {COLUMNS} FROM items WHERE {pk_col} = ?1 AND {sk_col} >= ?2 AND {sk_col} < COALESCE(?3, {sk_col} || 'x') \
         AND (expires_at IS NULL OR expires_at >= ?4)"
    );
    let upper = prefix_end(&q.sk_prefix);
    let cursor = q.cursor.as_ref();
    check_cursor(q, index)?;
    if cursor.is_some() {
        if index {
            sql_text.push_str(&format!(" AND ({sk_col}, pk, sk) {cmp} (?5, ?6, ?7)"));
        } else {
            sql_text.push_str(&format!(" AND sk {cmp} ?7"));
        }
    }
    sql_text.push_str(&format!(" ORDER BY {order} LIMIT ?8"));
    let mut stmt = conn.prepare_cached(&sql_text).map_err(sql)?;
    let fetch = (limit + 1) as i64;
    let rows = stmt
        .query_map(
            params![
                q.pk,
                q.sk_prefix,
                upper,
                now,
                cursor.and_then(|c| c.gsi1sk.clone()),
                cursor.map(|c| c.pk.clone()),
                cursor.map(|c| c.sk.clone()),
                fetch
            ],
            item_from_row,
        )
        .map_err(sql)?;
    let mut items = Vec::with_capacity(limit + 1);
    for row in rows {
        items.push(decode(row.map_err(sql)?)?);
    }
    let more = items.len() > limit;
    items.truncate(limit);
    let cursor = if more { items.last().map(|i| Cursor::after(i, index)) } else { None };
    Ok(Page { items, cursor })
}

#[async_trait]
impl Table for SqliteTable {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        let key = key.clone();
        self.db
            .call(move |conn, db| {
                let tx = conn.transaction().map_err(sql)?;
                get_live(&tx, &key, db.now_seconds())
            })
            .await
    }

    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
        self.db
            .call(move |conn, db| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
                if condition != Condition::None {
                    let current = get_live(&tx, &item.key(), db.now_seconds())?;
                    if !holds(condition, current.as_ref()) {
                        return Err(StoreError::ConditionFailed);
                    }
                }
                write_put(&tx, &item)?;
                tx.commit().map_err(sql)
            })
            .await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<()> {
        let key = key.clone();
        self.db
            .call(move |conn, db| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
                if condition != Condition::None {
                    let current = get_live(&tx, &key, db.now_seconds())?;
                    if !holds(condition, current.as_ref()) {
                        return Err(StoreError::ConditionFailed);
                    }
                }
                write_delete(&tx, &key)?;
                tx.commit().map_err(sql)
            })
            .await
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        self.db.call(move |conn, db| run_query(db, conn, &query, false)).await
    }

    async fn query_gsi1(&self, query: Query) -> StoreResult<Page> {
        self.db.call(move |conn, db| run_query(db, conn, &query, true)).await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        check_transaction(&ops)?;
        self.db
            .call(move |conn, db| {
                let now = db.now_seconds();
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
                for (index, op) in ops.iter().enumerate() {
                    let (key, condition) = match op {
                        WriteOp::Put { item, condition } => (item.key(), *condition),
                        WriteOp::Delete { key, condition } | WriteOp::Check { key, condition } => {
                            (key.clone(), *condition)
                        }
                    };
                    if condition != Condition::None {
                        let current = get_live(&tx, &key, now)?;
                        if !holds(condition, current.as_ref()) {
                            // Dropping the transaction rolls back: nothing was written yet anyway.
                            return Err(StoreError::TransactionConflict { index });
                        }
                    }
                }
                for op in &ops {
                    match op {
                        WriteOp::Put { item, .. } => write_put(&tx, item)?,
                        WriteOp::Delete { key, .. } => write_delete(&tx, key)?,
                        WriteOp::Check { .. } => {}
                    }
                }
                tx.commit().map_err(sql)
            })
            .await
    }

    async fn get_many(&self, keys: &[Key]) -> StoreResult<Vec<Item>> {
        let keys = keys.to_vec();
        self.db
            .call(move |conn, db| {
                let now = db.now_seconds();
                let tx = conn.transaction().map_err(sql)?;
                let mut out = Vec::with_capacity(keys.len());
                for key in &keys {
                    if let Some(item) = get_live(&tx, key, now)? {
                        out.push(item);
                    }
                }
                Ok(out)
            })
            .await
    }
}
