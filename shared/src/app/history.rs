//! Delivery history (DESIGN §8): executions of an automation, one execution with its attempts,
//! and the manual redeliver.
//!
//! Redeliver: allowed once an execution is finished (delivered, failed or skipped); a pending
//! one is still being delivered (409, its `next_attempt_at` says when). It sets the execution
//! `pending` and enqueues one `Redeliver` job for attempt `attempt_count + 1`, which renders the
//! event again with the automation's current action and secrets, sends it with the same
//! `webhook-id`, and sets the status from its result with no automatic retry after it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::app::error::{AppError, AppResult};
use crate::app::jobs::DeliveryTask;
use crate::app::repo::Listed;
use crate::domain::automation::Action;
use crate::domain::execution::{Execution, ExecutionStatus, FiredMetric, RecordedRequest};
use crate::domain::names::{EventId, ObjectId, TeamName};
use crate::domain::team::Principal;
use crate::ports::queue::OutgoingMessage;

/// An execution as the history list shows it: the detail without attempts and event document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionSummary {
    pub id: ObjectId,
    pub automation_id: ObjectId,
    pub event_id: EventId,
    pub event_type: String,
    pub status: ExecutionStatus,
    pub reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    /// Attempts made so far; the detail lists them.
    pub attempt_count: u32,
    /// The last request sent, secrets masked as `***`.
    pub request: Option<RecordedRequest>,
    pub metric: Option<FiredMetric>,
}

impl From<Execution> for ExecutionSummary {
    fn from(e: Execution) -> Self {
        Self {
            id: e.id,
            automation_id: e.automation_id,
            event_id: e.event_id,
            event_type: e.event_type,
            status: e.status,
            reason: e.reason,
            created_at: e.created_at,
            updated_at: e.updated_at,
            next_attempt_at: e.next_attempt_at,
            attempt_count: e.attempt_count,
            request: e.request,
            metric: e.metric,
        }
    }
}

/// The answer to a redeliver: which attempt was queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Redelivery {
    pub execution_id: ObjectId,
    /// The number the new attempt will have.
    pub attempt: u32,
    pub status: ExecutionStatus,
}

impl App {
    /// Executions of one of the team's automations, newest first. The history of a deleted
    /// automation stays readable until its executions expire.
    pub async fn automation_executions(
        &self,
        who: &Principal,
        team: &TeamName,
        automation: &ObjectId,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<ExecutionSummary>> {
        self.access(who, team).await?.require_reader()?;
        let page = self.repo.executions_of(automation, limit, cursor).await?;
        // Automation ids are unique across teams; the filter keeps that from being a premise.
        let items: Vec<ExecutionSummary> =
            page.items.into_iter().filter(|e| e.team == *team).map(ExecutionSummary::from).collect();
        if items.is_empty() && cursor.is_none() && self.repo.automation(team, automation).await?.is_none() {
            return Err(AppError::not_found(format!("automation {automation}")));
        }
        Ok(Listed { items, next_cursor: page.next_cursor })
    }

    /// One execution of the team with every attempt, oldest first.
    pub async fn execution_detail(&self, who: &Principal, team: &TeamName, id: &ObjectId) -> AppResult<Execution> {
        self.access(who, team).await?.require_reader()?;
        let mut execution = self.team_execution(team, id).await?.value;
        execution.attempts = self.repo.attempts(id).await?;
        execution.attempts.sort_by_key(|a| a.number);
        Ok(execution)
    }

    async fn team_execution(
        &self,
        team: &TeamName,
        id: &ObjectId,
    ) -> AppResult<crate::app::repo::Versioned<Execution>> {
        match self.repo.execution(id).await? {
            Some(execution) if execution.value.team == *team => Ok(execution),
            _ => Err(AppError::not_found(format!("execution {id}"))),
        }
    }

    /// Queues one more attempt of a finished execution (admin).
    #[tracing::instrument(skip_all, fields(execution_id = %id, automation_id))]
    pub async fn redeliver_execution(&self, who: &Principal, team: &TeamName, id: &ObjectId) -> AppResult<Redelivery> {
        self.access(who, team).await?.require_admin()?;
        let current = self.team_execution(team, id).await?;
        tracing::Span::current().record("automation_id", tracing::field::display(&current.value.automation_id));
        if current.value.status == ExecutionStatus::Pending {
            return Err(AppError::conflict(
                "the execution is still being delivered; redeliver it once it is delivered or failed",
            ));
        }
        match self.repo.automation(team, &current.value.automation_id).await? {
            None => return Err(AppError::conflict("the execution's automation no longer exists")),
            Some(a) if a.value.spec.action == Action::NoOp => {
                return Err(AppError::conflict("the automation's action is no_op: there is nothing to send"));
            }
            Some(_) => {}
        }

        let attempt = current.value.attempt_count + 1;
        let mut pending = current.value.clone();
        pending.status = ExecutionStatus::Pending;
        pending.reason = None;
        pending.next_attempt_at = None;
        pending.updated_at = self.clock.now();
        // Pending first: a job that ran before this write would find the execution finished
        // and send nothing.
        self.repo.update_execution(current.version, &pending).await?;
        let task = DeliveryTask::Redeliver { team: team.clone(), execution_id: id.clone(), attempt };
        if let Err(e) = self.deliveries.send(OutgoingMessage::new(task.to_body())).await {
            // Put the execution back as it was, so it stays redeliverable.
            if let Err(undo) = self.repo.update_execution(current.version + 1, &current.value).await {
                tracing::error!(error = %undo, "could not restore the execution after a failed enqueue");
            }
            return Err(e.into());
        }
        tracing::info!(attempt, "redeliver queued");
        Ok(Redelivery { execution_id: id.clone(), attempt, status: ExecutionStatus::Pending })
    }
}
