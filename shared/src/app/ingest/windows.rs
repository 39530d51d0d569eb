//! Metric windows, stored one item per (run, metric) at `RUN#t#p#run|METRIC#name`, together
//! with the fires each applied row caused until that row's event is done.
//!
//! Why the fires are stored: `MetricWindow::observe` ignores a step at or below the last one,
//! so a replayed row changes nothing, which is what keeps a value from being counted twice.
//! But it also means a replay cannot recompute what the row fired. So the window update (one
//! versioned write) records, next to the new window, `{event_id, fires}` for the row just
//! applied; a replay of that event finds its fires there and carries on with the cooldown
//! claims and executions, which are idempotent. The record is kept while later rows move the
//! window on (a replay may come minutes later, after the queue's visibility timeout) and is
//! dropped by the first window update that finds the event marked seen, or after the dedupe
//! period. Rows that fire nothing record nothing, so the common update reads nothing extra.

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::DEDUPE_SECONDS;
use crate::app::error::{AppError, AppResult};
use crate::app::repo::{Repo, keys};
use crate::domain::event::Event;
use crate::domain::names::{EventId, ObjectId};
use crate::engine::matching::CompiledAutomation;
use crate::engine::window::MetricWindow;
use crate::ports::error::StoreError;
use crate::render::variables::format_metric_value;

/// A window unchanged for this long is dropped (TTL): the run has long ended.
pub const WINDOW_RETENTION_SECONDS: i64 = 30 * 86_400;
/// Events whose fires are kept at once; beyond it the oldest record goes (and is logged).
const MAX_PENDING: usize = 16;
/// Concurrent rows of one run race on the window's version; each retry re-reads it.
const MAX_CONFLICTS: usize = 25;

/// The stored item.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct WindowState {
    window: MetricWindow,
    #[serde(default)]
    pending: Vec<PendingFires>,
}

/// What one applied row fired, kept until its event is marked seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingFires {
    event_id: EventId,
    at: Timestamp,
    fires: Vec<RecordedFire>,
}

/// One automation whose condition held on the window ending at a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedFire {
    pub automation_id: ObjectId,
    /// `${metric_value}`: the aggregate, change or z-score, as text (JSON has no NaN).
    pub value: String,
}

/// One row's value for one metric.
pub struct Row<'a> {
    pub event: &'a Event,
    pub run_id: &'a str,
    pub metric: &'a str,
    pub step: i64,
    pub value: f64,
}

/// Applies the row to the (run, metric) window and returns the fires it caused among
/// `watchers` (the enabled automations of the project watching this metric; those whose
/// static condition does not hold for the event are not evaluated). For a replayed row, the
/// fires recorded when it was applied.
pub async fn apply_row(
    repo: &Repo,
    row: &Row<'_>,
    watchers: &[Arc<CompiledAutomation>],
) -> AppResult<Vec<RecordedFire>> {
    let event = row.event;
    let key = keys::metric_window(&event.team, &event.project, row.run_id, row.metric);
    let capacity = watchers.iter().filter_map(|a| a.window_capacity()).max().unwrap_or(1);
    for _ in 0..MAX_CONFLICTS {
        let stored = repo.get::<WindowState>(&key).await?;
        let (mut state, version) = match stored {
            Some(v) => (v.value, Some(v.version)),
            None => (WindowState::default(), None),
        };
        if !state.window.observe(row.step, Some(row.value), capacity) {
            // Already applied (a replay, or a stale or repeated step): only a replay finds fires.
            let recorded = state.pending.into_iter().find(|p| p.event_id == event.id);
            return Ok(recorded.map(|p| p.fires).unwrap_or_default());
        }
        let fires: Vec<RecordedFire> = watchers
            .iter()
            .filter(|a| a.matches(event))
            .filter_map(|a| {
                a.evaluate(&state.window)
                    .map(|v| RecordedFire { automation_id: a.automation.id.clone(), value: format_metric_value(v) })
            })
            .collect();
        let now = repo.now();
        state.pending = still_pending(repo, event, std::mem::take(&mut state.pending), now).await?;
        if !fires.is_empty() {
            if state.pending.len() >= MAX_PENDING {
                let dropped = state.pending.remove(0);
                tracing::warn!(event_id = %dropped.event_id, "metric window keeps too many unfinished events; the oldest record of fires is dropped");
            }
            state.pending.push(PendingFires { event_id: event.id.clone(), at: now, fires: fires.clone() });
        }
        let expires_at = now.as_second() + WINDOW_RETENTION_SECONDS;
        if repo.put_if_unchanged(&key, &state, version, Some(expires_at)).await? {
            return Ok(fires);
        }
    }
    Err(AppError::Store(StoreError::Unavailable(format!(
        "metric window {}|{} kept changing; retry later",
        key.pk, key.sk
    ))))
}

/// The records of other events that may still be replayed: not yet marked seen and younger
/// than the dedupe period (an older event would be processed as new anyway).
async fn still_pending(
    repo: &Repo,
    event: &Event,
    pending: Vec<PendingFires>,
    now: Timestamp,
) -> AppResult<Vec<PendingFires>> {
    let oldest = now.as_second() - DEDUPE_SECONDS;
    let candidates: Vec<PendingFires> =
        pending.into_iter().filter(|p| p.event_id != event.id && p.at.as_second() > oldest).collect();
    if candidates.is_empty() {
        return Ok(candidates);
    }
    let ids: Vec<_> = candidates.iter().map(|p| (event.team.clone(), p.event_id.clone())).collect();
    let seen = repo.events_seen(&ids).await?;
    Ok(candidates.into_iter().filter(|p| !seen.contains(&(event.team.clone(), p.event_id.clone()))).collect())
}

/// What `row` would make `automation` fire with the stored window, without writing anything
/// (the preview's dry run): `None` when its metric condition does not hold.
pub async fn preview_row(repo: &Repo, row: &Row<'_>, automation: &CompiledAutomation) -> AppResult<PreviewedRow> {
    let key = keys::metric_window(&row.event.team, &row.event.project, row.run_id, row.metric);
    let mut state = repo.get::<WindowState>(&key).await?.map(|v| v.value).unwrap_or_default();
    let capacity = automation.window_capacity().unwrap_or(1);
    if !state.window.observe(row.step, Some(row.value), capacity) {
        return Ok(PreviewedRow::StepNotNewer);
    }
    Ok(match automation.evaluate(&state.window) {
        Some(v) => PreviewedRow::Fires(v),
        None => PreviewedRow::Holds(false),
    })
}

/// The outcome of [`preview_row`].
#[derive(Debug, Clone, PartialEq)]
pub enum PreviewedRow {
    /// The condition holds on the window ending at this row: the value that fired.
    Fires(f64),
    /// The condition does not hold (yet: the window may not be full).
    Holds(bool),
    /// The run's window has already seen this step or a later one: a replay changes nothing.
    StepNotNewer,
}
