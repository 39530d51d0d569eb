//! Ingest: one event from the events queue → matching automations → executions and delivery
//! jobs (DESIGN §2, §5, §10).
//!
//! Order of writes, and why a crash between any two of them neither loses nor doubles an
//! execution or a job when the message is received again:
//!
//! 1. `EVENT#t#id|SEEN` is read first; a live mark means the event is done: nothing happens.
//! 2. RUN_HISTORY: each watched metric's window is updated with one versioned write that also
//!    records the fires of this row (see `windows`), so a replay, which cannot apply the row
//!    again, still finds what it fired.
//! 3. Claims: `COOLDOWN#auto#run|META` (metric events, TTL = cooldown) and
//!    `COOLDOWN#auto#run|STATE#s` (RUN_STATE, once per run and state) are created holding the
//!    event id. A claim held by another event stops the fire; one held by this event means a
//!    replay and the fire goes on. Claiming before the execution is written keeps two rows
//!    processed at once from both firing within a cooldown.
//! 4. Executions: ids derive from (team, event id, automation id) and are created only if
//!    absent. An execution that exists, still pending and never attempted, gets its job sent
//!    again: the crash may have come before the send. Delivery is idempotent by
//!    (execution, attempt), so the one duplicate this can make (a crash after the send and
//!    before step 5) sends nothing twice.
//! 5. Jobs are sent in batches, then the event is marked seen, last.
//!
//! A message that is not JSON or not a valid event is dead-lettered at once with the reason
//! (naming the field); any store fault leaves the message for a retry.

mod accept;
mod compiled;
pub mod windows;

use std::sync::Arc;

use async_trait::async_trait;

pub use accept::{Accepted, MAX_BATCH_EVENTS, accept_events};
use compiled::CompiledCache;

use super::App;
use super::error::AppResult;
use super::jobs::DeliveryTask;
use super::repo::{Claim, keys};
use super::worker::{MessageHandler, Outcome};
use crate::domain::automation::Action;
use crate::domain::event::{Event, EventType};
use crate::domain::execution::{Execution, ExecutionStatus, FiredMetric};
use crate::domain::names::ObjectId;
use crate::engine::matching::{CompiledAutomation, triggered_by};
use crate::ports::queue::{OutgoingMessage, ReceivedMessage};

/// How long an event id is remembered for dedupe: 7 days (DESIGN §4).
pub const DEDUPE_SECONDS: i64 = 7 * 86_400;
/// How long a RUN_STATE automation remembers that it fired for a (run, state).
pub const RUN_STATE_MEMORY_SECONDS: i64 = 30 * 86_400;

/// The events-queue consumer.
pub struct IngestHandler {
    app: App,
    compiled: CompiledCache,
}

/// What processing one event did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processed {
    /// The event had been processed before: nothing was done.
    pub duplicate: bool,
    /// Executions this event fired (created now or found from an earlier, interrupted try).
    pub executions: Vec<ObjectId>,
    /// Delivery jobs sent.
    pub jobs: usize,
}

/// An automation that fires for the event being processed.
struct Fire {
    automation: Arc<CompiledAutomation>,
    metric: Option<FiredMetric>,
}

/// Reads a queue message as an event; the error is the dead-letter reason, naming the field.
pub fn parse_message(body: &str, received_at: jiff::Timestamp) -> Result<Event, String> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    Event::parse(&value, received_at).map_err(|invalid| {
        let faults: Vec<String> = invalid
            .0
            .iter()
            .map(|f| if f.field.is_empty() { f.message.clone() } else { format!("{}: {}", f.field, f.message) })
            .collect();
        format!("invalid event: {}", faults.join("; "))
    })
}

#[async_trait]
impl MessageHandler for IngestHandler {
    async fn handle(&self, message: &ReceivedMessage) -> Outcome {
        let event = match parse_message(&message.body, self.app.clock.now()) {
            Ok(event) => event,
            Err(reason) => return Outcome::DeadLetter { reason },
        };
        match self.process(&event).await {
            Ok(_) => Outcome::Done,
            Err(e) => {
                if e.is_transient() {
                    tracing::warn!(event_id = %event.id, error = %e, "ingest failed; the event will be retried");
                } else {
                    // Not a fault of the event (that would have failed parsing): keep it, so
                    // the queue's own dead-letter backstop keeps it if this never clears.
                    tracing::error!(event_id = %event.id, error = %e, "ingest failed; the event will be retried");
                }
                Outcome::Retry { after: None }
            }
        }
    }

    /// Rows and states of one run go in order; everything else in parallel. A body that does
    /// not parse has no key (it will be dead-lettered on its own).
    fn ordering_key(&self, message: &ReceivedMessage) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Probe {
            team: Option<String>,
            project: Option<String>,
            run: Option<RunProbe>,
        }
        #[derive(serde::Deserialize)]
        struct RunProbe {
            id: Option<String>,
        }
        let probe: Probe = serde_json::from_str(&message.body).ok()?;
        let run = probe.run?.id?;
        Some(format!("{}#{}#{run}", probe.team.unwrap_or_default(), probe.project.unwrap_or_default()))
    }
}

impl IngestHandler {
    pub fn new(app: App) -> Self {
        Self { app, compiled: CompiledCache::default() }
    }

    /// Processes one valid event: see the module documentation for the order of writes.
    #[tracing::instrument(skip_all, fields(event_id = %event.id, automation_id, execution_id))]
    pub async fn process(&self, event: &Event) -> AppResult<Processed> {
        let repo = &self.app.repo;
        if repo.event_seen(&event.team, &event.id).await? {
            tracing::debug!("duplicate event; already processed");
            return Ok(Processed { duplicate: true, ..Processed::default() });
        }
        let automations = self.automations_for(event).await?;
        let fires = match event.event_type {
            EventType::RunHistory => self.metric_fires(event, &automations).await?,
            EventType::RunState => self.run_state_fires(event, &automations).await?,
            _ => automations
                .iter()
                .filter(|a| a.matches(event))
                .map(|a| Fire { automation: Arc::clone(a), metric: None })
                .collect(),
        };
        let mut processed = Processed::default();
        let mut jobs = Vec::new();
        for fire in &fires {
            let (id, job) = self.execute(event, fire).await?;
            processed.executions.push(id);
            jobs.extend(job);
        }
        if !jobs.is_empty() {
            let messages = jobs.iter().map(|j| OutgoingMessage::new(j.to_body())).collect();
            self.app.deliveries.send_batch(messages).await?;
        }
        processed.jobs = jobs.len();
        let expires_at = self.app.clock.now().as_second() + DEDUPE_SECONDS;
        repo.mark_event_seen(&event.team, &event.id, expires_at).await?;
        Ok(processed)
    }

    /// The enabled automations of the event's project that this event type can trigger.
    async fn automations_for(&self, event: &Event) -> AppResult<Vec<Arc<CompiledAutomation>>> {
        let all = self.app.repo.all_automations_of_project(&event.team, &event.project).await?;
        Ok(all
            .into_iter()
            .filter(|a| a.spec.enabled && triggered_by(a, event.event_type))
            .filter_map(|a| self.compiled.compiled(a))
            .collect())
    }

    /// RUN_HISTORY: update each watched metric's window, then claim the cooldown of each
    /// automation whose condition held.
    async fn metric_fires(&self, event: &Event, automations: &[Arc<CompiledAutomation>]) -> AppResult<Vec<Fire>> {
        let (Some(run), Some(history)) = (&event.run, &event.history) else {
            return Ok(Vec::new());
        };
        let mut fires = Vec::new();
        for (metric, value) in &history.values {
            // A null is skipped: not counted, and no window is written for it.
            let Some(value) = value.as_f64() else { continue };
            let watchers: Vec<Arc<CompiledAutomation>> =
                automations.iter().filter(|a| a.metric_name() == Some(metric.as_str())).cloned().collect();
            if watchers.is_empty() {
                continue;
            }
            let row = windows::Row { event, run_id: &run.id, metric, step: history.step, value };
            for recorded in windows::apply_row(&self.app.repo, &row, &watchers).await? {
                // A replay fires only automations that are still there and enabled.
                let Some(automation) = watchers.iter().find(|a| a.automation.id == recorded.automation_id) else {
                    continue;
                };
                let cooldown = i64::try_from(automation.automation.spec.cooldown_seconds).unwrap_or(i64::MAX);
                let expires_at = self.app.clock.now().as_second().saturating_add(cooldown);
                let key = keys::cooldown(&automation.automation.id, &run.id);
                if self.app.repo.claim(&key, &event.id, Some(expires_at)).await? == Claim::HeldByOther {
                    tracing::debug!(automation_id = %automation.automation.id, "in cooldown for this run");
                    continue;
                }
                fires.push(Fire {
                    automation: Arc::clone(automation),
                    metric: Some(FiredMetric { name: metric.clone(), value: recorded.value }),
                });
            }
        }
        Ok(fires)
    }

    /// RUN_STATE: fires once per (automation, run, state), CRASHED counting as FAILED.
    async fn run_state_fires(&self, event: &Event, automations: &[Arc<CompiledAutomation>]) -> AppResult<Vec<Fire>> {
        let Some(run) = &event.run else { return Ok(Vec::new()) };
        let Some(state) = run.state.map(|s| s.normalized()) else { return Ok(Vec::new()) };
        let mut fires = Vec::new();
        for automation in automations.iter().filter(|a| a.matches(event)) {
            let key = keys::run_state_fired(&automation.automation.id, &run.id, state.as_str());
            let expires_at = self.app.clock.now().as_second() + RUN_STATE_MEMORY_SECONDS;
            if self.app.repo.claim(&key, &event.id, Some(expires_at)).await? == Claim::HeldByOther {
                tracing::debug!(automation_id = %automation.automation.id, "already fired for this run and state");
                continue;
            }
            fires.push(Fire { automation: Arc::clone(automation), metric: None });
        }
        Ok(fires)
    }

    /// Creates the execution (if absent) and returns its id and the job to send, if any.
    #[tracing::instrument(skip_all, fields(event_id = %event.id, automation_id = %fire.automation.automation.id, execution_id))]
    async fn execute(&self, event: &Event, fire: &Fire) -> AppResult<(ObjectId, Option<DeliveryTask>)> {
        let automation = &fire.automation.automation;
        let id = Execution::derive_id(&event.team, &event.id, &automation.id);
        tracing::Span::current().record("execution_id", tracing::field::display(&id));
        let no_op = matches!(automation.spec.action, Action::NoOp);
        let now = self.app.clock.now();
        let mut execution = Execution::pending(
            event.team.clone(),
            event.id.clone(),
            automation.id.clone(),
            automation.spec.event.type_name(),
            event.doc.clone(),
            fire.metric.clone(),
            now,
        );
        if no_op {
            execution.status = ExecutionStatus::Skipped;
            execution.reason = Some("no_op".to_owned());
        } else {
            execution.next_attempt_at = Some(now);
        }
        let needs_job = if self.app.repo.create_execution(&execution).await? {
            tracing::info!(automation_name = %automation.spec.name.as_str(), "automation fired");
            !no_op
        } else {
            // Created by an earlier, interrupted try: its job may have been lost with it.
            let existing = self.app.repo.execution(&id).await?;
            existing.is_some_and(|e| e.value.status == ExecutionStatus::Pending && e.value.attempt_count == 0)
        };
        let job =
            needs_job.then(|| DeliveryTask::Deliver { team: event.team.clone(), execution_id: id.clone(), attempt: 1 });
        Ok((id, job))
    }
}
