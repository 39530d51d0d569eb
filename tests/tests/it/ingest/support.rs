//! Helpers of the ingest suite: a team with an admin and a producer, automations seeded
//! straight in the store, events fed to the handler, executions and delivery jobs read back,
//! and a `Table` that fails its Nth write.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use automations::app::App;
use automations::app::ingest::IngestHandler;
use automations::app::jobs::DeliveryTask;
use automations::app::repo::Repo;
use automations::app::worker::{MessageHandler, Outcome, settle};
use automations::domain::automation::{Automation, AutomationSpecIn};
use automations::domain::execution::Execution;
use automations::domain::names::{EventId, ObjectId, TeamName};
use automations::domain::team::Role;
use automations::ports::error::{StoreError, StoreResult};
use automations::ports::queue::{OutgoingMessage, ReceivedMessage};
use automations::ports::table::{Condition, Item, Key, Page, Query, Table, WriteOp};
use serde_json::{Value, json};

use crate::common::app::TestApp;
use crate::common::stores::Backend;

pub const TEAM: &str = "ml-team";
/// A webhook id for actions: ingest does not read the webhook, delivery does.
pub const WEBHOOK: &str = "wh_0123456789ABCDEFGHJKMNPQRS";

pub fn team() -> TeamName {
    TeamName::parse(TEAM).unwrap()
}

/// The service with team `ml-team`, its admin `alice` and its producer `pipeline`.
pub struct Ctx {
    pub t: TestApp,
    pub handler: IngestHandler,
    pub admin: String,
    pub producer: String,
}

impl Ctx {
    pub async fn new(backend: Backend) -> Ctx {
        let t = TestApp::spawn(backend).await;
        let admin = t.seed_team_with_admin(TEAM, "alice").await;
        let producer = t.seed_user("pipeline").await;
        t.seed_member(TEAM, "pipeline", Role::Producer, &[]).await;
        let handler = IngestHandler::new(t.app.clone());
        Ctx { t, handler, admin, producer }
    }

    pub fn app(&self) -> &App {
        &self.t.app
    }

    /// Stores an automation of `ml-team` from its spec (as the API would accept it).
    pub async fn automation(&self, spec: Value) -> ObjectId {
        let spec = serde_json::from_value::<AutomationSpecIn>(spec).unwrap().validate().unwrap();
        let now = jiff::Timestamp::now();
        let automation = Automation {
            id: ObjectId::generate("au"),
            spec,
            created_by: "alice".into(),
            created_at: now,
            updated_at: now,
        };
        self.app().repo.create_automation(&team(), &automation).await.unwrap();
        automation.id
    }

    /// Feeds one event to the handler, as the queue would, and expects it to be done.
    pub async fn ingest(&self, event: Value) {
        assert_eq!(self.handler.handle(&message(event.to_string())).await, Outcome::Done, "{event}");
    }

    /// Runs every message of the events queue through the handler, settling each as the
    /// worker does (dead letters included).
    pub async fn drain_events(&self) {
        let app = self.app();
        loop {
            let messages = app.events.receive(10, Duration::ZERO, None).await.unwrap();
            if messages.is_empty() {
                return;
            }
            for m in messages {
                let outcome = self.handler.handle(&m).await;
                settle(app.events.as_ref(), app.events_dlq.as_ref(), &m, outcome).await;
            }
        }
    }

    /// Every execution of an automation.
    pub async fn executions(&self, automation: &ObjectId) -> Vec<Execution> {
        self.app().repo.executions_of(automation, 100, None).await.unwrap().items
    }

    /// The execution an automation fired for an event, if any.
    pub async fn execution_for(&self, event_id: &str, automation: &ObjectId) -> Option<Execution> {
        let id = Execution::derive_id(&team(), &EventId::parse(event_id).unwrap(), automation);
        self.app().repo.execution(&id).await.unwrap().map(|v| v.value)
    }

    /// Takes every job off the deliveries queue.
    pub async fn jobs(&self) -> Vec<DeliveryTask> {
        drain(self.app().deliveries.as_ref())
            .await
            .into_iter()
            .map(|m| serde_json::from_str(&m.body).unwrap())
            .collect()
    }

    /// This context's app over another table (e.g. a failing one), with a handler of its own.
    pub fn handler_over(&self, table: Arc<dyn Table>) -> IngestHandler {
        let app = self.app().clone();
        IngestHandler::new(App { repo: Repo::new(table, app.clock.clone()), ..app })
    }
}

/// Takes every message off a queue.
pub async fn drain(queue: &dyn automations::ports::queue::Queue) -> Vec<ReceivedMessage> {
    let mut all = Vec::new();
    loop {
        let got = queue.receive(10, Duration::ZERO, None).await.unwrap();
        if got.is_empty() {
            return all;
        }
        for m in &got {
            queue.delete(&m.receipt).await.unwrap();
        }
        all.extend(got);
    }
}

/// A message as the queue would hand it over.
pub fn message(body: impl Into<String>) -> ReceivedMessage {
    ReceivedMessage {
        id: ulid::Ulid::generate().to_string(),
        receipt: String::new(),
        body: body.into(),
        receive_count: 1,
        attributes: Default::default(),
    }
}

/// An automation spec with a webhook action.
pub fn spec(name: &str, scope: Value, event: Value) -> Value {
    json!({"name": name, "scope": scope, "event": event,
           "action": {"type": "webhook", "webhook_id": WEBHOOK}})
}

pub fn project(p: &str) -> Value {
    json!({"type": "project", "project": p})
}

pub fn artifact_event(id: &str, kind: &str, project: &str, collection: &str) -> Value {
    json!({"v": 1, "id": id, "type": kind, "team": TEAM, "project": project, "author": "alice",
           "artifact": {"collection": collection, "version": "v7", "type": "model",
                        "aliases": ["latest"], "tags": [], "metadata": {"auc": 0.91}}})
}

pub fn alias_event(id: &str, project: &str, collection: &str, alias: &str) -> Value {
    let mut e = artifact_event(id, "ADD_ARTIFACT_ALIAS", project, collection);
    e["alias"] = json!(alias);
    e
}

pub fn run_state(id: &str, run: &str, run_name: &str, state: &str) -> Value {
    json!({"id": id, "type": "RUN_STATE", "team": TEAM, "project": "llm",
           "run": {"id": run, "name": run_name, "state": state}})
}

pub fn row(id: &str, run: &str, step: i64, values: Value) -> Value {
    json!({"id": id, "type": "RUN_HISTORY", "team": TEAM, "project": "llm",
           "run": {"id": run, "name": format!("name-{run}")}, "history": {"step": step, "values": values}})
}

/// How the Nth write fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Refused before it is applied (the backend was unreachable).
    Before,
    /// Applied, then the answer is lost (a timeout after the backend wrote).
    After,
}

/// A `Table` whose Nth write (put, delete or transaction) fails; every other call passes through.
pub struct FailingTable {
    inner: Arc<dyn Table>,
    fail_at: usize,
    mode: FailMode,
    writes: AtomicUsize,
}

impl FailingTable {
    pub fn new(inner: Arc<dyn Table>, fail_at: usize, mode: FailMode) -> Arc<FailingTable> {
        Arc::new(FailingTable { inner, fail_at, mode, writes: AtomicUsize::new(0) })
    }

    /// Whether the failure happened (false: there were fewer writes than `fail_at`).
    pub fn failed(&self) -> bool {
        self.writes.load(Ordering::SeqCst) >= self.fail_at
    }

    async fn write<T: Send>(&self, op: impl Future<Output = StoreResult<T>> + Send) -> StoreResult<T> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n != self.fail_at {
            return op.await;
        }
        if self.mode == FailMode::After {
            op.await?;
        }
        Err(StoreError::Unavailable(format!("injected failure of write {n}")))
    }
}

#[async_trait]
impl Table for FailingTable {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
        self.write(self.inner.put(item, condition)).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<()> {
        self.write(self.inner.delete(key, condition)).await
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        self.inner.query(query).await
    }

    async fn query_gsi1(&self, query: Query) -> StoreResult<Page> {
        self.inner.query_gsi1(query).await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        self.write(self.inner.transact(ops)).await
    }

    async fn get_many(&self, keys: &[Key]) -> StoreResult<Vec<Item>> {
        self.inner.get_many(keys).await
    }
}

/// Sends raw bodies to the events queue, as a producer writing to SQS directly would.
pub async fn send_raw(app: &App, bodies: &[String]) {
    app.events.send_batch(bodies.iter().map(OutgoingMessage::new).collect()).await.unwrap();
}
