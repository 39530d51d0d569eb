//! Repositories: typed access to each domain type, written once over the `Table` port.
//!
//! Owners and their uniqueness guards are written in one transaction, so a crash or a race
//! never leaves a name taken by nothing, nor two objects with one name.

pub mod keys;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::app::error::{AppError, AppResult};
use crate::domain::automation::Automation;
use crate::domain::execution::{Attempt, EXECUTION_RETENTION_SECONDS, Execution};
use crate::domain::names::{EventId, ObjectId, ProjectName, SecretName, TeamName, UserName};
use crate::domain::secret::SecretMeta;
use crate::domain::slack::SlackIntegration;
use crate::domain::team::{Member, Team, User};
use crate::domain::webhook::Webhook;
use crate::ports::clock::Clock;
use crate::ports::error::StoreError;
use crate::ports::table::{Condition, Cursor, Item, Key, Page, Query, Table, WriteOp};

/// A value with the version it was read at, for optimistic updates.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// A page of values and the opaque cursor of the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Typed access to the table.
#[derive(Clone)]
pub struct Repo {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> AppResult<Value> {
    serde_json::to_value(value).map_err(|e| AppError::Internal(format!("encoding: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(item: Item) -> AppResult<Versioned<T>> {
    let value = serde_json::from_value(item.data)
        .map_err(|e| AppError::Internal(format!("stored item {}|{} does not decode: {e}", item.pk, item.sk)))?;
    Ok(Versioned { value, version: item.version })
}

fn item_of<T: Serialize>(key: &Key, value: &T) -> AppResult<Item> {
    Ok(Item::new(key.pk.clone(), key.sk.clone(), encode(value)?))
}

/// A uniqueness guard: an item whose existence reserves a name for its owner.
fn guard(key: &Key, owner: &str) -> Item {
    Item::new(key.pk.clone(), key.sk.clone(), json!({ "owner": owner }))
}

/// Maps a transaction conflict on operation `guard_index` to a name conflict.
fn name_conflict(e: StoreError, guard_index: usize, what: &str) -> AppError {
    match e {
        StoreError::TransactionConflict { index } if index == guard_index => {
            AppError::conflict(format!("{what} is already taken in this team"))
        }
        StoreError::TransactionConflict { .. } | StoreError::ConditionFailed => {
            AppError::conflict("the object changed meanwhile; read it again and retry")
        }
        other => AppError::Store(other),
    }
}

fn parse_cursor(cursor: Option<&str>) -> AppResult<Option<Cursor>> {
    cursor
        .map(|c| Cursor::decode(c).map_err(|_| AppError::invalid("cursor", "is not a cursor this service issued")))
        .transpose()
}

/// The cursor for `query`: lists of one team share a partition, so a cursor is also checked to
/// sit inside this list's sort-key prefix (the backends check the partition).
fn cursor_of(query: &Query, cursor: Option<&str>, index: bool) -> AppResult<Option<Cursor>> {
    let cursor = parse_cursor(cursor)?;
    if let Some(c) = &cursor {
        let sk = if index { c.gsi1sk.as_deref().unwrap_or_default() } else { c.sk.as_str() };
        if !sk.starts_with(&query.sk_prefix) {
            return Err(foreign_cursor(StoreError::InvalidCursor));
        }
    }
    Ok(cursor)
}

/// A well-formed cursor of another list (another team, another filter) is the caller's fault.
fn foreign_cursor(e: StoreError) -> AppError {
    match e {
        StoreError::InvalidCursor => AppError::invalid("cursor", "is not a cursor of this list"),
        other => AppError::Store(other),
    }
}

fn listed<T: DeserializeOwned>(page: Page) -> AppResult<Listed<T>> {
    let items = page.items.into_iter().map(|i| decode(i).map(|v| v.value)).collect::<AppResult<Vec<T>>>()?;
    Ok(Listed { items, next_cursor: page.cursor.map(|c| c.encode()) })
}

impl Repo {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self { table, clock }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub async fn get<T: DeserializeOwned>(&self, key: &Key) -> AppResult<Option<Versioned<T>>> {
        self.table.get(key).await?.map(decode).transpose()
    }

    pub async fn list<T: DeserializeOwned>(&self, query: Query, cursor: Option<&str>) -> AppResult<Listed<T>> {
        let cursor = cursor_of(&query, cursor, false)?;
        let page = self.table.query(query.after(cursor)).await.map_err(foreign_cursor)?;
        listed(page)
    }

    pub async fn list_gsi1<T: DeserializeOwned>(&self, query: Query, cursor: Option<&str>) -> AppResult<Listed<T>> {
        let cursor = cursor_of(&query, cursor, true)?;
        let page = self.table.query_gsi1(query.after(cursor)).await.map_err(foreign_cursor)?;
        listed(page)
    }

    /// Every item of a partition prefix, following cursors (for small, bounded sets).
    pub async fn list_all<T: DeserializeOwned>(&self, pk: &str, prefix: &str) -> AppResult<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.table.query(Query::new(pk, prefix, 1000).after(cursor)).await?;
            for item in page.items {
                out.push(decode(item)?.value);
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Creates `value` at `key`; `Conflict` if it exists.
    pub async fn create<T: Serialize>(&self, key: &Key, value: &T, what: &str) -> AppResult<()> {
        match self.table.put(item_of(key, value)?, Condition::Absent).await {
            Err(StoreError::ConditionFailed) => Err(AppError::conflict(format!("{what} already exists"))),
            other => Ok(other?),
        }
    }

    /// Replaces `value` at `key` if it is still at `version`.
    pub async fn update<T: Serialize>(&self, key: &Key, value: &T, version: u64) -> AppResult<()> {
        let mut item = item_of(key, value)?;
        item.version = version + 1;
        match self.table.put(item, Condition::Version(version)).await {
            Err(StoreError::ConditionFailed) => {
                Err(AppError::conflict("the object changed meanwhile; read it again and retry"))
            }
            other => Ok(other?),
        }
    }

    // ---- teams, users, members ---------------------------------------------------------

    pub async fn create_team(&self, team: &Team) -> AppResult<()> {
        self.create(&keys::team_meta(&team.name), team, &format!("team {}", team.name)).await
    }

    pub async fn team(&self, name: &TeamName) -> AppResult<Option<Team>> {
        Ok(self.get::<Team>(&keys::team_meta(name)).await?.map(|v| v.value))
    }

    /// Creates a user and the hash of their token together.
    pub async fn create_user(&self, user: &User, token_hash: &str) -> AppResult<()> {
        let ops = vec![
            WriteOp::Put { item: item_of(&keys::user(&user.name), user)?, condition: Condition::Absent },
            WriteOp::Put {
                item: Item::new(keys::token(token_hash).pk, keys::META, json!({ "user": user.name })),
                condition: Condition::Absent,
            },
        ];
        self.table.transact(ops).await.map_err(|e| match e {
            StoreError::TransactionConflict { index: 0 } => {
                AppError::conflict(format!("user {} already exists", user.name))
            }
            StoreError::TransactionConflict { .. } => AppError::Internal("token collision".into()),
            other => AppError::Store(other),
        })
    }

    pub async fn user(&self, name: &UserName) -> AppResult<Option<User>> {
        Ok(self.get::<User>(&keys::user(name)).await?.map(|v| v.value))
    }

    /// The user a token (by its SHA-256 hex) belongs to.
    pub async fn user_of_token(&self, token_hash: &str) -> AppResult<Option<UserName>> {
        let Some(item) = self.table.get(&keys::token(token_hash)).await? else { return Ok(None) };
        let user = item.data.get("user").cloned().unwrap_or(Value::Null);
        serde_json::from_value(user).map(Some).map_err(|e| AppError::Internal(format!("token item: {e}")))
    }

    pub async fn put_member(&self, team: &TeamName, member: &Member) -> AppResult<()> {
        let item = item_of(&keys::member(team, &member.user), member)?;
        Ok(self.table.put(item, Condition::None).await?)
    }

    pub async fn member(&self, team: &TeamName, user: &UserName) -> AppResult<Option<Member>> {
        Ok(self.get::<Member>(&keys::member(team, user)).await?.map(|v| v.value))
    }

    pub async fn members(&self, team: &TeamName, limit: usize, cursor: Option<&str>) -> AppResult<Listed<Member>> {
        self.list(Query::new(keys::team(team), keys::MEMBER_PREFIX, limit), cursor).await
    }

    pub async fn delete_member(&self, team: &TeamName, user: &UserName) -> AppResult<()> {
        match self.table.delete(&keys::member(team, user), Condition::Exists).await {
            Err(StoreError::ConditionFailed) => Err(AppError::not_found(format!("member {user}"))),
            other => Ok(other?),
        }
    }

    // ---- secrets (metadata) ------------------------------------------------------------

    pub async fn create_secret_meta(&self, team: &TeamName, meta: &SecretMeta) -> AppResult<()> {
        self.create(&keys::secret(team, &meta.name), meta, &format!("secret {}", meta.name)).await
    }

    pub async fn secret_meta(&self, team: &TeamName, name: &SecretName) -> AppResult<Option<Versioned<SecretMeta>>> {
        self.get(&keys::secret(team, name)).await
    }

    pub async fn secret_metas(
        &self,
        team: &TeamName,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<SecretMeta>> {
        self.list(Query::new(keys::team(team), keys::SECRET_PREFIX, limit), cursor).await
    }

    pub async fn delete_secret_meta(&self, team: &TeamName, name: &SecretName) -> AppResult<()> {
        Ok(self.table.delete(&keys::secret(team, name), Condition::None).await?)
    }

    // ---- webhooks ----------------------------------------------------------------------

    pub async fn create_webhook(&self, team: &TeamName, webhook: &Webhook) -> AppResult<()> {
        let ops = vec![
            WriteOp::Put { item: item_of(&keys::webhook(team, &webhook.id), webhook)?, condition: Condition::Absent },
            WriteOp::Put {
                item: guard(&keys::webhook_name(team, &webhook.name), webhook.id.as_str()),
                condition: Condition::Absent,
            },
        ];
        self.table
            .transact(ops)
            .await
            .map_err(|e| name_conflict(e, 1, &format!("webhook name {:?}", webhook.name.as_str())))
    }

    pub async fn webhook(&self, team: &TeamName, id: &ObjectId) -> AppResult<Option<Versioned<Webhook>>> {
        self.get(&keys::webhook(team, id)).await
    }

    pub async fn webhooks(&self, team: &TeamName, limit: usize, cursor: Option<&str>) -> AppResult<Listed<Webhook>> {
        self.list(Query::new(keys::team(team), keys::WEBHOOK_PREFIX, limit), cursor).await
    }

    pub async fn all_webhooks(&self, team: &TeamName) -> AppResult<Vec<Webhook>> {
        self.list_all(&keys::team(team), keys::WEBHOOK_PREFIX).await
    }

    /// Replaces a webhook read at `old`; moves its name guard when the name changed.
    pub async fn update_webhook(&self, team: &TeamName, old: &Versioned<Webhook>, new: &Webhook) -> AppResult<()> {
        let mut item = item_of(&keys::webhook(team, &new.id), new)?;
        item.version = old.version + 1;
        let mut ops = vec![WriteOp::Put { item, condition: Condition::Version(old.version) }];
        if old.value.name != new.name {
            ops.push(WriteOp::Put {
                item: guard(&keys::webhook_name(team, &new.name), new.id.as_str()),
                condition: Condition::Absent,
            });
            ops.push(WriteOp::Delete { key: keys::webhook_name(team, &old.value.name), condition: Condition::None });
        }
        self.table
            .transact(ops)
            .await
            .map_err(|e| name_conflict(e, 1, &format!("webhook name {:?}", new.name.as_str())))
    }

    pub async fn delete_webhook(&self, team: &TeamName, webhook: &Versioned<Webhook>) -> AppResult<()> {
        let ops = vec![
            WriteOp::Delete {
                key: keys::webhook(team, &webhook.value.id),
                condition: Condition::Version(webhook.version),
            },
            WriteOp::Delete { key: keys::webhook_name(team, &webhook.value.name), condition: Condition::None },
        ];
        self.table.transact(ops).await.map_err(|e| name_conflict(e, usize::MAX, "webhook"))
    }

    // ---- Slack integrations ------------------------------------------------------------

    /// Creates the integration, or updates the one already connected to the same channel
    /// (keeping its id). Returns the stored integration.
    pub async fn upsert_slack(&self, team: &TeamName, integration: &SlackIntegration) -> AppResult<SlackIntegration> {
        let chan_key = keys::slack_channel(team, &integration.slack_team_id, &integration.channel_id);
        if let Some(existing) = self.table.get(&chan_key).await? {
            let owner = existing.data.get("owner").and_then(Value::as_str).unwrap_or_default().to_owned();
            let id =
                ObjectId::parse(owner).map_err(|_| AppError::Internal("slack channel guard without owner".into()))?;
            if let Some(old) = self.get::<SlackIntegration>(&keys::slack(team, &id)).await? {
                let updated = SlackIntegration {
                    id: old.value.id.clone(),
                    created_at: old.value.created_at,
                    ..integration.clone()
                };
                self.update(&keys::slack(team, &id), &updated, old.version).await?;
                return Ok(updated);
            }
            // The guard outlived its integration (deleted meanwhile): take the channel over.
            self.table.delete(&chan_key, Condition::None).await?;
        }
        let ops = vec![
            WriteOp::Put {
                item: item_of(&keys::slack(team, &integration.id), integration)?,
                condition: Condition::Absent,
            },
            WriteOp::Put { item: guard(&chan_key, integration.id.as_str()), condition: Condition::Absent },
        ];
        self.table.transact(ops).await.map_err(|e| name_conflict(e, 1, "this Slack channel"))?;
        Ok(integration.clone())
    }

    pub async fn slack(&self, team: &TeamName, id: &ObjectId) -> AppResult<Option<Versioned<SlackIntegration>>> {
        self.get(&keys::slack(team, id)).await
    }

    pub async fn slacks(
        &self,
        team: &TeamName,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<SlackIntegration>> {
        self.list(Query::new(keys::team(team), keys::SLACK_PREFIX, limit), cursor).await
    }

    pub async fn delete_slack(&self, team: &TeamName, integration: &SlackIntegration) -> AppResult<()> {
        let ops = vec![
            WriteOp::Delete { key: keys::slack(team, &integration.id), condition: Condition::Exists },
            WriteOp::Delete {
                key: keys::slack_channel(team, &integration.slack_team_id, &integration.channel_id),
                condition: Condition::None,
            },
        ];
        self.table.transact(ops).await.map_err(|e| match e {
            StoreError::TransactionConflict { .. } => AppError::not_found("slack integration"),
            other => AppError::Store(other),
        })
    }

    // ---- automations -------------------------------------------------------------------

    fn automation_item(&self, team: &TeamName, automation: &Automation) -> AppResult<Item> {
        let project = automation.spec.scope.project()?;
        Ok(item_of(&keys::automation(team, &automation.id), automation)?
            .with_gsi1(keys::scope(team, &project), format!("AUTO#{}", automation.id)))
    }

    pub async fn create_automation(&self, team: &TeamName, automation: &Automation) -> AppResult<()> {
        let ops = vec![
            WriteOp::Put { item: self.automation_item(team, automation)?, condition: Condition::Absent },
            WriteOp::Put {
                item: guard(&keys::automation_name(team, automation.spec.name.as_str()), automation.id.as_str()),
                condition: Condition::Absent,
            },
        ];
        self.table
            .transact(ops)
            .await
            .map_err(|e| name_conflict(e, 1, &format!("automation name {:?}", automation.spec.name.as_str())))
    }

    pub async fn automation(&self, team: &TeamName, id: &ObjectId) -> AppResult<Option<Versioned<Automation>>> {
        self.get(&keys::automation(team, id)).await
    }

    pub async fn automations(
        &self,
        team: &TeamName,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<Automation>> {
        self.list(Query::new(keys::team(team), keys::AUTOMATION_PREFIX, limit), cursor).await
    }

    /// The automations that see `project`'s events (project scope, and registry/collection
    /// scopes when the project is a registry), through the scope index.
    pub async fn automations_of_project(
        &self,
        team: &TeamName,
        project: &ProjectName,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<Automation>> {
        self.list_gsi1(Query::new(keys::scope(team, project), "AUTO#", limit), cursor).await
    }

    pub async fn all_automations_of_project(
        &self,
        team: &TeamName,
        project: &ProjectName,
    ) -> AppResult<Vec<Automation>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.automations_of_project(team, project, 1000, cursor.as_deref()).await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    pub async fn all_automations(&self, team: &TeamName) -> AppResult<Vec<Automation>> {
        self.list_all(&keys::team(team), keys::AUTOMATION_PREFIX).await
    }

    pub async fn update_automation(
        &self,
        team: &TeamName,
        old: &Versioned<Automation>,
        new: &Automation,
    ) -> AppResult<()> {
        let mut item = self.automation_item(team, new)?;
        item.version = old.version + 1;
        let mut ops = vec![WriteOp::Put { item, condition: Condition::Version(old.version) }];
        if old.value.spec.name != new.spec.name {
            ops.push(WriteOp::Put {
                item: guard(&keys::automation_name(team, new.spec.name.as_str()), new.id.as_str()),
                condition: Condition::Absent,
            });
            ops.push(WriteOp::Delete {
                key: keys::automation_name(team, old.value.spec.name.as_str()),
                condition: Condition::None,
            });
        }
        self.table
            .transact(ops)
            .await
            .map_err(|e| name_conflict(e, 1, &format!("automation name {:?}", new.spec.name.as_str())))
    }

    pub async fn delete_automation(&self, team: &TeamName, automation: &Versioned<Automation>) -> AppResult<()> {
        let ops = vec![
            WriteOp::Delete {
                key: keys::automation(team, &automation.value.id),
                condition: Condition::Version(automation.version),
            },
            WriteOp::Delete {
                key: keys::automation_name(team, automation.value.spec.name.as_str()),
                condition: Condition::None,
            },
        ];
        self.table.transact(ops).await.map_err(|e| name_conflict(e, usize::MAX, "automation"))
    }

    // ---- executions --------------------------------------------------------------------

    fn execution_item(&self, execution: &Execution) -> AppResult<Item> {
        let mut stored = execution.clone();
        stored.attempts.clear();
        let expires = execution.created_at.as_second() + EXECUTION_RETENTION_SECONDS;
        Ok(item_of(&keys::execution(&execution.id), &stored)?
            // Fixed-width nanoseconds: RFC 3339 text drops trailing zeros and would sort
            // `…:00Z` after `…:00.5Z`.
            .with_gsi1(
                keys::executions_of(&execution.automation_id),
                format!("{:020}#{}", execution.created_at.as_nanosecond(), execution.id),
            )
            .expiring_at(expires))
    }

    /// Creates the execution unless it exists (replays map to the same id). Returns whether it was created.
    pub async fn create_execution(&self, execution: &Execution) -> AppResult<bool> {
        match self.table.put(self.execution_item(execution)?, Condition::Absent).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The execution without its attempts.
    pub async fn execution(&self, id: &ObjectId) -> AppResult<Option<Versioned<Execution>>> {
        self.get(&keys::execution(id)).await
    }

    pub async fn update_execution(&self, old_version: u64, execution: &Execution) -> AppResult<()> {
        let mut item = self.execution_item(execution)?;
        item.version = old_version + 1;
        match self.table.put(item, Condition::Version(old_version)).await {
            Err(StoreError::ConditionFailed) => Err(AppError::conflict("the execution changed meanwhile")),
            other => Ok(other?),
        }
    }

    /// Executions of an automation, newest first.
    pub async fn executions_of(
        &self,
        automation: &ObjectId,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<Execution>> {
        self.list_gsi1(Query::new(keys::executions_of(automation), "", limit).descending(), cursor).await
    }

    /// Records attempt `n` once: a duplicate delivery job cannot record it twice.
    pub async fn record_attempt(&self, execution: &Execution, attempt: &Attempt) -> AppResult<bool> {
        let expires = execution.created_at.as_second() + EXECUTION_RETENTION_SECONDS;
        let item = item_of(&keys::attempt(&execution.id, attempt.number), attempt)?.expiring_at(expires);
        match self.table.put(item, Condition::Absent).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn attempts(&self, execution: &ObjectId) -> AppResult<Vec<Attempt>> {
        self.list_all(&keys::execution(execution).pk, keys::ATTEMPT_PREFIX).await
    }

    // ---- delivery outcomes (deliver) ---------------------------------------------------

    /// Records attempt `attempt` and the execution's state after it in one transaction, so a
    /// crash never leaves an attempt without its outcome (nor an outcome without its attempt).
    /// `Ok(false)` when the attempt was already recorded or the execution moved past
    /// `old_version`: someone else delivered meanwhile, and nothing was written.
    pub async fn record_attempt_outcome(
        &self,
        old_version: u64,
        execution: &Execution,
        attempt: &Attempt,
    ) -> AppResult<bool> {
        let expires = execution.created_at.as_second() + EXECUTION_RETENTION_SECONDS;
        let attempt_item = item_of(&keys::attempt(&execution.id, attempt.number), attempt)?.expiring_at(expires);
        let mut execution_item = self.execution_item(execution)?;
        execution_item.version = old_version + 1;
        let ops = vec![
            WriteOp::Put { item: attempt_item, condition: Condition::Absent },
            WriteOp::Put { item: execution_item, condition: Condition::Version(old_version) },
        ];
        match self.table.transact(ops).await {
            Ok(()) => Ok(true),
            Err(StoreError::TransactionConflict { .. } | StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    // ---- ingest: dedupe marks, claims, metric windows ---------------------------------
    // Kept together; app/ingest.rs explains the order of these writes and why it is safe.

    /// Whether the event was processed already (its dedupe mark is live).
    pub async fn event_seen(&self, team: &TeamName, id: &EventId) -> AppResult<bool> {
        Ok(self.table.get(&keys::event_seen(team, id)).await?.is_some())
    }

    /// Which of these events were processed already, in one batched read.
    pub async fn events_seen(&self, events: &[(TeamName, EventId)]) -> AppResult<HashSet<(TeamName, EventId)>> {
        let wanted: HashMap<Key, &(TeamName, EventId)> =
            events.iter().map(|e| (keys::event_seen(&e.0, &e.1), e)).collect();
        let keys: Vec<Key> = wanted.keys().cloned().collect();
        let mut seen = HashSet::new();
        for chunk in keys.chunks(100) {
            for item in self.table.get_many(chunk).await? {
                if let Some(event) = wanted.get(&item.key()) {
                    seen.insert((*event).clone());
                }
            }
        }
        Ok(seen)
    }

    /// Marks the event processed until `expires_at` (epoch seconds).
    pub async fn mark_event_seen(&self, team: &TeamName, id: &EventId, expires_at: i64) -> AppResult<()> {
        let key = keys::event_seen(team, id);
        let item = Item::new(key.pk, key.sk, json!({})).expiring_at(expires_at);
        Ok(self.table.put(item, Condition::None).await?)
    }

    /// Takes `key` for `event` until `expires_at`, unless another event holds it. Taking it
    /// again for the same event answers `Ours`, so a replayed event carries on where it stopped.
    pub async fn claim(&self, key: &Key, event: &EventId, expires_at: Option<i64>) -> AppResult<Claim> {
        // An expired claim can vanish between the failed put and the read: try again then.
        for _ in 0..3 {
            let mut item = Item::new(key.pk.clone(), key.sk.clone(), json!({ "event_id": event }));
            item.expires_at = expires_at;
            match self.table.put(item, Condition::Absent).await {
                Ok(()) => return Ok(Claim::Taken),
                Err(StoreError::ConditionFailed) => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(held) = self.table.get(key).await? {
                let holder = held.data.get("event_id").and_then(Value::as_str);
                return Ok(if holder == Some(event.as_str()) { Claim::Ours } else { Claim::HeldByOther });
            }
        }
        Err(StoreError::Unavailable(format!("claim {}|{} keeps changing", key.pk, key.sk)).into())
    }

    /// Writes `value` at `key` if the item is still as read: at `read_version`, or absent when
    /// it was read as absent. Returns false when it changed meanwhile (read again and retry).
    pub async fn put_if_unchanged<T: Serialize>(
        &self,
        key: &Key,
        value: &T,
        read_version: Option<u64>,
        expires_at: Option<i64>,
    ) -> AppResult<bool> {
        let mut item = item_of(key, value)?;
        item.expires_at = expires_at;
        let condition = match read_version {
            Some(v) => {
                item.version = v + 1;
                Condition::Version(v)
            }
            None => Condition::Absent,
        };
        match self.table.put(item, condition).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// The answer to [`Repo::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Taken now, for this event.
    Taken,
    /// This event took it before (a replay).
    Ours,
    /// Another event holds it.
    HeldByOther,
}
