//! `Table` on one DynamoDB table (DESIGN §10).
//!
//! DynamoDB deletes expired items lazily (up to days after `expires_at`), so every read filters
//! them out here and every condition treats them as absent. An item is gone once
//! `expires_at < now` (epoch seconds), as in DESIGN §10, the SQLite backend and DynamoDB's own
//! TTL; see `expired`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem};

use crate::ports::clock::Clock;
use crate::ports::error::{StoreError, StoreResult};
use crate::ports::table::{
    Condition, Cursor, Item, Key, Order, Page, Query, Table, WriteOp, check_cursor, check_limit, check_transaction,
};

/// The name of the one global secondary index.
pub const GSI1: &str = "gsi1";

/// BatchGetItem takes at most 100 keys per call.
const BATCH_GET_MAX: usize = 100;
/// How often unprocessed keys of a BatchGetItem are asked for again before giving up.
const BATCH_GET_ATTEMPTS: u32 = 8;

type Attrs = HashMap<String, AttributeValue>;

/// Whether `item` is past its expiry at `now`. Not `Item::is_expired` (which says `<=`): the
/// SQLite backend and the conditions below treat an item as live through its `expires_at`
/// second, and all reads must agree with the conditions.
fn expired(item: &Item, now: i64) -> bool {
    item.expires_at.is_some_and(|e| e < now)
}

/// The DynamoDB table behind the `Table` port.
pub struct DynamoTable {
    client: Client,
    table_name: String,
    clock: Arc<dyn Clock>,
}

impl DynamoTable {
    pub fn new(client: Client, table_name: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self { client, table_name: table_name.into(), clock }
    }

    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    fn now(&self) -> i64 {
        self.clock.now().as_second()
    }

    /// Turns an SDK error into a port error naming the call that failed. Validation errors are
    /// the caller's (an item over 400 KB, an empty key) and retrying cannot help, so they are
    /// `Invalid`; everything else may pass and is `Unavailable`.
    fn sdk_error<E, R>(&self, op: &str, e: &SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        if let SdkError::ServiceError(se) = e
            && se.err().code() == Some("ValidationException")
        {
            return StoreError::Invalid(format!(
                "DynamoDB {op} on {} refused the request: {}",
                self.table_name,
                se.err().message().unwrap_or("validation error")
            ));
        }
        StoreError::Unavailable(format!("DynamoDB {op} on {} failed: {}", self.table_name, DisplayErrorContext(e)))
    }
}

/// A condition as DynamoDB expression parts. Only the placeholders an expression uses are
/// returned: DynamoDB rejects unused ones.
struct Expr {
    text: &'static str,
    names: HashMap<String, String>,
    values: Attrs,
}

fn condition_expr(condition: Condition, now: i64) -> Option<Expr> {
    let name = |p: &str, n: &str| (p.to_owned(), n.to_owned());
    let now_value = (":now".to_owned(), AttributeValue::N(now.to_string()));
    match condition {
        Condition::None => None,
        Condition::Absent => Some(Expr {
            text: "attribute_not_exists(#pk) OR #exp < :now",
            names: HashMap::from([name("#pk", "pk"), name("#exp", "expires_at")]),
            values: HashMap::from([now_value]),
        }),
        Condition::Version(v) => Some(Expr {
            text: "#ver = :v AND (attribute_not_exists(#exp) OR #exp >= :now)",
            names: HashMap::from([name("#ver", "version"), name("#exp", "expires_at")]),
            values: HashMap::from([now_value, (":v".to_owned(), AttributeValue::N(v.to_string()))]),
        }),
        Condition::Exists => Some(Expr {
            text: "attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp >= :now)",
            names: HashMap::from([name("#pk", "pk"), name("#exp", "expires_at")]),
            values: HashMap::from([now_value]),
        }),
    }
}

fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(key.pk.clone())),
        ("sk".to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn item_attrs(item: Item) -> Attrs {
    let mut attrs = HashMap::with_capacity(7);
    attrs.insert("pk".to_owned(), AttributeValue::S(item.pk));
    attrs.insert("sk".to_owned(), AttributeValue::S(item.sk));
    if let Some(v) = item.gsi1pk {
        attrs.insert("gsi1pk".to_owned(), AttributeValue::S(v));
    }
    if let Some(v) = item.gsi1sk {
        attrs.insert("gsi1sk".to_owned(), AttributeValue::S(v));
    }
    if let Some(v) = item.expires_at {
        attrs.insert("expires_at".to_owned(), AttributeValue::N(v.to_string()));
    }
    attrs.insert("version".to_owned(), AttributeValue::N(item.version.to_string()));
    attrs.insert("data".to_owned(), AttributeValue::S(item.data.to_string()));
    attrs
}

fn string_attr(attrs: &Attrs, name: &str) -> StoreResult<Option<String>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(s)) => Ok(Some(s.clone())),
        Some(_) => Err(StoreError::Corrupt(format!("attribute {name} is not a string"))),
    }
}

fn number_attr<T: std::str::FromStr>(attrs: &Attrs, name: &str) -> StoreResult<Option<T>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => {
            n.parse().map(Some).map_err(|_| StoreError::Corrupt(format!("attribute {name} is not an integer")))
        }
        Some(_) => Err(StoreError::Corrupt(format!("attribute {name} is not a number"))),
    }
}

fn item_from(attrs: &Attrs) -> StoreResult<Item> {
    let required = |name: &str| {
        string_attr(attrs, name)?.ok_or_else(|| StoreError::Corrupt(format!("item lacks attribute {name}")))
    };
    let pk = required("pk")?;
    let sk = required("sk")?;
    let data = required("data")?;
    let data = serde_json::from_str(&data)
        .map_err(|e| StoreError::Corrupt(format!("data of item {pk}|{sk} is not JSON: {e}")))?;
    Ok(Item {
        gsi1pk: string_attr(attrs, "gsi1pk")?,
        gsi1sk: string_attr(attrs, "gsi1sk")?,
        expires_at: number_attr(attrs, "expires_at")?,
        version: number_attr(attrs, "version")?
            .ok_or_else(|| StoreError::Corrupt(format!("item {pk}|{sk} lacks attribute version")))?,
        pk,
        sk,
        data,
    })
}

impl DynamoTable {
    /// One query, paged exactly like the SQLite backend: live items are collected over as many
    /// DynamoDB pages as it takes to hold `limit + 1` of them (or to reach the end); the extra
    /// one only says that a next page exists, and the cursor names the last item returned.
    async fn run_query(&self, query: Query, index: bool) -> StoreResult<Page> {
        let limit = check_limit(query.limit)?;
        let (pk_attr, sk_attr) = if index { ("gsi1pk", "gsi1sk") } else { ("pk", "sk") };
        let mut start_key = match &query.cursor {
            Some(cursor) => Some(start_key(cursor, &query, index)?),
            None => None,
        };
        let now = self.now();
        let mut names = HashMap::from([("#pk".to_owned(), pk_attr.to_owned())]);
        let mut values = HashMap::from([(":pk".to_owned(), AttributeValue::S(query.pk.clone()))]);
        let key_condition = if query.sk_prefix.is_empty() {
            "#pk = :pk"
        } else {
            names.insert("#sk".to_owned(), sk_attr.to_owned());
            values.insert(":p".to_owned(), AttributeValue::S(query.sk_prefix.clone()));
            "#pk = :pk AND begins_with(#sk, :p)"
        };
        let op = if index { "Query gsi1" } else { "Query" };

        let mut items: Vec<Item> = Vec::with_capacity(limit + 1);
        loop {
            let wanted = limit + 1 - items.len();
            let mut request = self
                .client
                .query()
                .table_name(&self.table_name)
                .key_condition_expression(key_condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(query.order == Order::Ascending)
                .limit(i32::try_from(wanted).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start_key.take());
            // GSIs are eventually consistent only; DynamoDB refuses ConsistentRead on them.
            request = if index { request.index_name(GSI1) } else { request.consistent_read(true) };
            let out = request.send().await.map_err(|e| self.sdk_error(op, &e))?;
            for attrs in out.items() {
                let item = item_from(attrs)?;
                if !expired(&item, now) {
                    items.push(item);
                }
                if items.len() > limit {
                    break;
                }
            }
            start_key = out.last_evaluated_key().cloned();
            if items.len() > limit || start_key.is_none() {
                break;
            }
        }

        let cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| Cursor::after(last, index))
        } else {
            None
        };
        Ok(Page { items, cursor })
    }
}

/// The ExclusiveStartKey for a cursor, after the checks every backend makes. DynamoDB also
/// refuses a start key whose sort key lies outside the `begins_with` range (ValidationException);
/// such a cursor did not come from this query, so that is `InvalidCursor` too.
fn start_key(cursor: &Cursor, query: &Query, index: bool) -> StoreResult<Attrs> {
    check_cursor(query, index)?;
    let mut attrs = key_attrs(&Key::new(cursor.pk.clone(), cursor.sk.clone()));
    if index {
        let (Some(gpk), Some(gsk)) = (&cursor.gsi1pk, &cursor.gsi1sk) else {
            return Err(StoreError::InvalidCursor);
        };
        if !gsk.starts_with(&query.sk_prefix) {
            return Err(StoreError::InvalidCursor);
        }
        attrs.insert("gsi1pk".to_owned(), AttributeValue::S(gpk.clone()));
        attrs.insert("gsi1sk".to_owned(), AttributeValue::S(gsk.clone()));
    } else if !cursor.sk.starts_with(&query.sk_prefix) {
        return Err(StoreError::InvalidCursor);
    }
    Ok(attrs)
}

#[async_trait]
impl Table for DynamoTable {
    #[tracing::instrument(skip_all, fields(table = %self.table_name))]
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem", &e))?;
        let now = self.now();
        match out.item() {
            Some(attrs) => Ok(Some(item_from(attrs)?).filter(|item| !expired(item, now))),
            None => Ok(None),
        }
    }

    #[tracing::instrument(skip_all, fields(table = %self.table_name))]
    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;

        let mut request = self.client.put_item().table_name(&self.table_name).set_item(Some(item_attrs(item)));
        if let Some(expr) = condition_expr(condition, self.now()) {
            request = request
                .condition_expression(expr.text)
                .set_expression_attribute_names(Some(expr.names))
                .set_expression_attribute_values(Some(expr.values));
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                Err(StoreError::ConditionFailed)
            }
            Err(e) => Err(self.sdk_error("PutItem", &e)),
        }
    }

    #[tracing::instrument(skip_all, fields(table = %self.table_name))]
    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<()> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;

        let mut request = self.client.delete_item().table_name(&self.table_name).set_key(Some(key_attrs(key)));
        if let Some(expr) = condition_expr(condition, self.now()) {
            request = request
                .condition_expression(expr.text)
                .set_expression_attribute_names(Some(expr.names))
                .set_expression_attribute_values(Some(expr.values));
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.as_service_error(), Some(DeleteItemError::ConditionalCheckFailedException(_))) => {
                Err(StoreError::ConditionFailed)
            }
            Err(e) => Err(self.sdk_error("DeleteItem", &e)),
        }
    }

    #[tracing::instrument(skip_all, fields(table = %self.table_name))]
    async fn query(&self, query: Query) -> StoreResult<Page> {
        self.run_query(query, false).await
    }

    #[tracing::instrument(skip_all, fields(table = %self.table_name))]
    async fn query_gsi1(&self, query: Query) -> StoreResult<Page> {
        self.run_query(query, true).await
    }

    #[tracing::instrument(skip_all, fields(table = %self.table_name, ops = ops.len()))]
    async fn transact(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

        check_transaction(&ops)?;
        let now = self.now();
        let build_error = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::Unavailable(format!("building a DynamoDB transaction failed: {e}"))
        };
        let mut items = Vec::with_capacity(ops.len());
        for op in ops {
            let item = match op {
                WriteOp::Put { item, condition } => {
                    let mut put = Put::builder().table_name(&self.table_name).set_item(Some(item_attrs(item)));
                    if let Some(expr) = condition_expr(condition, now) {
                        put = put
                            .condition_expression(expr.text)
                            .set_expression_attribute_names(Some(expr.names))
                            .set_expression_attribute_values(Some(expr.values));
                    }
                    TransactWriteItem::builder().put(put.build().map_err(build_error)?).build()
                }
                WriteOp::Delete { key, condition } => {
                    let mut delete = Delete::builder().table_name(&self.table_name).set_key(Some(key_attrs(&key)));
                    if let Some(expr) = condition_expr(condition, now) {
                        delete = delete
                            .condition_expression(expr.text)
                            .set_expression_attribute_names(Some(expr.names))
                            .set_expression_attribute_values(Some(expr.values));
                    }
                    TransactWriteItem::builder().delete(delete.build().map_err(build_error)?).build()
                }
                WriteOp::Check { key, condition } => {
                    // A ConditionCheck needs an expression; with none it is a no-op, so an
                    // always-true one keeps the operation (and its index) in the transaction.
                    let expr = condition_expr(condition, now).unwrap_or(Expr {
                        text: "attribute_not_exists(#pk) OR attribute_exists(#pk)",
                        names: HashMap::from([("#pk".to_owned(), "pk".to_owned())]),
                        values: HashMap::new(),
                    });
                    let check = ConditionCheck::builder()
                        .table_name(&self.table_name)
                        .set_key(Some(key_attrs(&key)))
                        .condition_expression(expr.text)
                        .set_expression_attribute_names(Some(expr.names))
                        .set_expression_attribute_values(if expr.values.is_empty() { None } else { Some(expr.values) });
                    TransactWriteItem::builder().condition_check(check.build().map_err(build_error)?).build()
                }
            };
            items.push(item);
        }

        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(tce)) = e.as_service_error() {
                    // Reasons line up with the operations; other codes (a concurrent
                    // transaction, throttling) are not the caller's conflict and may pass.
                    if let Some(index) =
                        tce.cancellation_reasons().iter().position(|r| r.code() == Some("ConditionalCheckFailed"))
                    {
                        return Err(StoreError::TransactionConflict { index });
                    }
                }
                Err(self.sdk_error("TransactWriteItems", &e))
            }
        }
    }

    #[tracing::instrument(skip_all, fields(table = %self.table_name, keys = keys.len()))]
    async fn get_many(&self, keys: &[Key]) -> StoreResult<Vec<Item>> {
        // BatchGetItem refuses duplicate keys and answers in any order: ask for each key once,
        // then answer in the caller's order, repeats included, as the default `get` loop does.
        let mut seen = HashSet::with_capacity(keys.len());
        let unique: Vec<&Key> = keys.iter().filter(|k| seen.insert(*k)).collect();
        let mut found: HashMap<Key, Item> = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(BATCH_GET_MAX) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|k| key_attrs(k)).collect()))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Unavailable(format!("building a DynamoDB BatchGetItem failed: {e}")))?;
            let mut attempt = 0;
            loop {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table_name, pending)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error("BatchGetItem", &e))?;
                for attrs in out.responses().and_then(|r| r.get(&self.table_name)).into_iter().flatten() {
                    let item = item_from(attrs)?;
                    found.insert(item.key(), item);
                }
                match out.unprocessed_keys().and_then(|u| u.get(&self.table_name)) {
                    Some(rest) if !rest.keys().is_empty() => {
                        attempt += 1;
                        if attempt >= BATCH_GET_ATTEMPTS {
                            return Err(StoreError::Unavailable(format!(
                                "DynamoDB BatchGetItem on {} left {} keys unprocessed after {attempt} attempts",
                                self.table_name,
                                rest.keys().len()
                            )));
                        }
                        // Unprocessed keys mean throttling: back off before asking again.
                        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                        pending = rest.clone();
                    }
                    _ => break,
                }
            }
        }
        let now = self.now();
        Ok(keys.iter().filter_map(|k| found.get(k)).filter(|item| !expired(item, now)).cloned().collect())
    }
}
