//! `POST …/automations/{id}/preview`: would this event fire this automation, and what would be
//! sent? A dry run: nothing is stored, no window moves, nothing is sent; secrets are masked.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::App;
use super::deliver::prepare::Plan;
use super::error::{AppError, AppResult};
use super::ingest::windows::{PreviewedRow, Row, preview_row};
use super::repo::keys;
use crate::domain::event::{Event, EventType};
use crate::domain::execution::{Execution, ExecutionStatus, FiredMetric, RecordedRequest};
use crate::domain::names::{ObjectId, TeamName};
use crate::domain::team::Principal;
use crate::engine::matching::CompiledAutomation;
use crate::render::variables::format_metric_value;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewIn {
    /// An event as producers send it (DESIGN §4).
    #[schema(value_type = Object)]
    pub event: Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PreviewOut {
    /// Whether the event would fire the automation now.
    pub matches: bool,
    /// Which condition failed, or what would happen instead of a send (`no_op`, a missing secret).
    pub reason: Option<String>,
    /// The request that would be sent, secrets shown as `***`.
    pub request: Option<RecordedRequest>,
}

impl PreviewOut {
    fn no(reason: impl Into<String>) -> Self {
        Self { matches: false, reason: Some(reason.into()), request: None }
    }
}

impl App {
    #[tracing::instrument(skip_all, fields(team = %team, automation_id = %id))]
    pub async fn preview_automation(
        &self,
        who: &Principal,
        team: &TeamName,
        id: &ObjectId,
        input: PreviewIn,
    ) -> AppResult<PreviewOut> {
        let automation = self.get_automation(who, team, id).await?;
        let now = self.clock.now();
        let event = Event::parse(&input.event, now).map_err(|e| AppError::Invalid(e.under("event")))?;
        if &event.team != team {
            return Ok(PreviewOut::no(format!("the event is of team {}, the automation of team {team}", event.team)));
        }
        let enabled = automation.spec.enabled;
        let compiled = CompiledAutomation::compile(automation.clone())
            .map_err(|e| AppError::Internal(format!("a saved automation does not compile: {e}")))?;
        if let Err(mismatch) = compiled.check(&event) {
            return Ok(PreviewOut::no(mismatch.reason));
        }
        let metric = match self.preview_dynamic(&compiled, &event).await? {
            Ok(metric) => metric,
            Err(reason) => return Ok(PreviewOut::no(reason)),
        };
        if !enabled {
            return Ok(PreviewOut::no("the automation is paused (enabled: false); its conditions hold"));
        }
        let execution = Execution::pending(
            team.clone(),
            event.id.clone(),
            automation.id.clone(),
            automation.spec.event.type_name(),
            event.doc.clone(),
            metric,
            now,
        );
        Ok(match self.plan(&execution).await? {
            Plan::Send(prepared) => PreviewOut { matches: true, reason: None, request: Some(prepared.recorded) },
            Plan::Finish { status: ExecutionStatus::Skipped, reason } => {
                PreviewOut { matches: true, reason: Some(format!("{reason}: nothing would be sent")), request: None }
            }
            Plan::Finish { reason, .. } => PreviewOut { matches: true, reason: Some(reason), request: None },
        })
    }

    /// The conditions that depend on stored state: metric windows and cooldowns, run states
    /// already fired. `Ok(Err(reason))` when one stops the automation.
    async fn preview_dynamic(
        &self,
        compiled: &CompiledAutomation,
        event: &Event,
    ) -> AppResult<Result<Option<FiredMetric>, String>> {
        let automation = &compiled.automation;
        match (event.event_type, event.run.as_ref()) {
            (EventType::RunHistory, Some(run)) => {
                let Some(metric) = compiled.metric_name() else { return Ok(Ok(None)) };
                let value = event.history.as_ref().and_then(|h| h.values.get(metric)).and_then(|v| v.as_f64());
                let (Some(value), Some(history)) = (value, event.history.as_ref()) else {
                    return Ok(Err(format!("the row has no value for metric {metric}")));
                };
                let row = Row { event, run_id: &run.id, metric, step: history.step, value };
                let fired = match preview_row(&self.repo, &row, compiled).await? {
                    PreviewedRow::Fires(v) => v,
                    PreviewedRow::Holds(_) => {
                        return Ok(Err(format!(
                            "the {metric} condition does not hold on the window ending at this row"
                        )));
                    }
                    PreviewedRow::StepNotNewer => {
                        return Ok(Err(format!(
                            "step {} of {metric} is not newer than the run's last step",
                            history.step
                        )));
                    }
                };
                if self.repo.table.get(&keys::cooldown(&automation.id, &run.id)).await?.is_some() {
                    return Ok(Err("the automation is in its cooldown for this run".to_owned()));
                }
                Ok(Ok(Some(FiredMetric { name: metric.to_owned(), value: format_metric_value(fired) })))
            }
            (EventType::RunState, Some(run)) => {
                let state = run.state.map(|s| s.normalized().as_str()).unwrap_or_default();
                if self.repo.table.get(&keys::run_state_fired(&automation.id, &run.id, state)).await?.is_some() {
                    return Ok(Err(format!("already fired for run {} reaching {state}", run.id)));
                }
                Ok(Ok(None))
            }
            _ => Ok(Ok(None)),
        }
    }
}
