//! Delivery (DESIGN §7): a job names one execution and an attempt; the handler makes at most
//! one attempt per message and records it with the execution's new state.
//!
//! Steps: check → claim → plan (render) → send → classify → record. How the job's attempt
//! number relates to the attempt made:
//!
//! - The execution's status says whether anything is left to do: a job for an execution that is
//!   not `pending` (delivered, failed, skipped) is done at once, so a duplicate of a finished job
//!   never sends.
//! - The attempt made is always `last recorded + 1`. An automatic job (`Deliver`) keeps one
//!   message for the whole chain: after a retryable failure the handler answers
//!   `Retry{after}` and the queue hands the same message back when the wait is over; it then
//!   sees its attempt recorded and makes the next one. `next_attempt_at` holds the wait, so a
//!   duplicate message that shows up early waits too instead of sending.
//! - A redeliver (`Redeliver{attempt: n}`) is one attempt: once attempt `n` is recorded, its
//!   duplicates are done. The API sets the execution `pending` before enqueueing it.
//! - Before sending, the handler claims the execution with a versioned write that moves
//!   `next_attempt_at` a lease ahead ([`ATTEMPT_LEASE`]): two copies of a message racing for the
//!   same attempt cannot both send, and a copy whose process died releases it when the lease
//!   runs out. The attempt and the execution's new state are then written in one transaction.

pub mod prepare;
pub mod request;
pub mod slack;

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use tracing::Span;

use crate::app::App;
use crate::app::error::{AppError, AppResult};
use crate::app::jobs::DeliveryTask;
use crate::app::worker::{MessageHandler, Outcome};
use crate::delivery::retry::{MAX_DELAY, TransportErrorKind, Verdict, classify};
use crate::delivery::sender::{DEFAULT_TIMEOUT, SendResult};
use crate::domain::execution::{Attempt, Execution, ExecutionStatus};
use crate::domain::names::{ObjectId, TeamName};
use crate::ports::queue::ReceivedMessage;
use prepare::{Plan, Prepared, Target};
use request::redact;

/// How long a claimed attempt keeps others off the execution: the sender's total timeout plus
/// room for the store writes around it.
pub const ATTEMPT_LEASE: Duration = Duration::from_secs(DEFAULT_TIMEOUT.as_secs() + 20);
/// A message back this close to its execution's next attempt time goes ahead: another round
/// through the queue would cost more than it keeps.
const EARLY_TOLERANCE: Duration = Duration::from_millis(500);
/// The wait after losing a race for an execution; the next look settles who goes on.
const CONFLICT_BACKOFF: Duration = Duration::from_secs(1);

/// The deliveries queue's consumer (Lambda and the local worker).
pub struct DeliverHandler {
    app: App,
}

impl DeliverHandler {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[async_trait]
impl MessageHandler for DeliverHandler {
    async fn handle(&self, message: &ReceivedMessage) -> Outcome {
        let task = match serde_json::from_str::<DeliveryTask>(&message.body) {
            Ok(task) => task,
            Err(e) => return Outcome::DeadLetter { reason: format!("not a delivery job: {e}") },
        };
        match self.app.deliver(&task).await {
            Ok(outcome) => outcome,
            Err(AppError::Conflict(why)) => {
                tracing::debug!(why = %why, "execution changed meanwhile; looking again shortly");
                Outcome::Retry { after: Some(CONFLICT_BACKOFF) }
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "delivery postponed: a backend is unavailable");
                Outcome::Retry { after: None }
            }
            Err(e) => Outcome::DeadLetter { reason: format!("delivery job cannot be processed: {e}") },
        }
    }
}

/// A job's parts.
struct Job<'a> {
    team: &'a TeamName,
    execution_id: &'a ObjectId,
    attempt: u32,
    manual: bool,
}

impl<'a> Job<'a> {
    fn of(task: &'a DeliveryTask) -> Self {
        match task {
            DeliveryTask::Deliver { team, execution_id, attempt } => {
                Job { team, execution_id, attempt: *attempt, manual: false }
            }
            DeliveryTask::Redeliver { team, execution_id, attempt } => {
                Job { team, execution_id, attempt: *attempt, manual: true }
            }
        }
    }
}

/// `now + d`, saturating.
fn after(now: Timestamp, d: Duration) -> Timestamp {
    now.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// How long until `at`, when that is worth waiting for.
fn wait_until(at: Option<Timestamp>, now: Timestamp) -> Option<Duration> {
    let wait = Duration::try_from(at?.duration_since(now)).ok()?;
    (wait > EARLY_TOLERANCE).then(|| wait.min(MAX_DELAY))
}

/// A uniform random number in [0, 1) for the retry jitter.
fn rand01() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Without randomness the schedule is still right, just not spread.
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// One line on what went wrong with an attempt, for reasons and attempt errors.
fn describe_failure(result: &SendResult) -> String {
    match (&result.status, &result.error) {
        (Some(status), _) => format!("HTTP {status}"),
        (None, Some(kind @ TransportErrorKind::Refused { .. })) => kind.to_string(),
        (None, Some(kind)) => match &result.error_message {
            Some(message) => format!("{kind}: {message}"),
            None => kind.to_string(),
        },
        (None, None) => "no answer".to_owned(),
    }
}

/// The attempt's transport error, if any, as the attempt log shows it.
fn attempt_error(result: &SendResult) -> Option<String> {
    let kind = result.error.as_ref()?;
    Some(match (kind, &result.error_message) {
        (TransportErrorKind::Refused { .. }, _) | (_, None) => kind.to_string(),
        (_, Some(message)) => format!("{kind}: {message}"),
    })
}

impl App {
    /// Processes one delivery job; see the module documentation for the rules.
    #[tracing::instrument(skip_all, fields(execution_id = %Job::of(task).execution_id, automation_id, attempt))]
    pub async fn deliver(&self, task: &DeliveryTask) -> AppResult<Outcome> {
        let job = Job::of(task);
        let Some(current) = self.repo.execution(job.execution_id).await? else {
            return Ok(Outcome::DeadLetter {
                reason: format!("execution {} does not exist (expired, or never created)", job.execution_id),
            });
        };
        Span::current().record("automation_id", tracing::field::display(&current.value.automation_id));
        if current.value.team != *job.team {
            return Ok(Outcome::DeadLetter {
                reason: format!("execution {} does not belong to team {}", job.execution_id, job.team),
            });
        }
        if current.value.status != ExecutionStatus::Pending {
            tracing::debug!(status = ?current.value.status, "execution already finished; nothing to send");
            return Ok(Outcome::Done);
        }

        let last = self.repo.attempts(job.execution_id).await?.iter().map(|a| a.number).max().unwrap_or(0);
        if job.manual && last >= job.attempt {
            tracing::debug!("redeliver already made; nothing to send");
            return Ok(Outcome::Done);
        }
        if !job.manual && last >= self.config.retry.max_attempts() {
            // Pending again only because of a redeliver, which has its own job.
            tracing::debug!("automatic attempts used up; a redeliver owns the execution");
            return Ok(Outcome::Done);
        }
        let now = self.clock.now();
        if let Some(wait) = wait_until(current.value.next_attempt_at, now) {
            tracing::debug!(wait_ms = wait.as_millis() as u64, "not due yet");
            return Ok(Outcome::Retry { after: Some(wait) });
        }

        let number = last + 1;
        Span::current().record("attempt", number);
        let mut claimed = current.value.clone();
        claimed.next_attempt_at = Some(after(now, ATTEMPT_LEASE));
        claimed.updated_at = now;
        self.repo.update_execution(current.version, &claimed).await?;
        let version = current.version + 1;

        let prepared = match self.plan(&claimed).await? {
            Plan::Send(prepared) => prepared,
            Plan::Finish { status, reason } => {
                tracing::info!(status = ?status, reason = %reason, "execution finished without sending");
                let mut finished = claimed;
                finished.status = status;
                finished.reason = Some(reason);
                finished.next_attempt_at = None;
                finished.updated_at = self.clock.now();
                self.repo.update_execution(version, &finished).await?;
                return Ok(Outcome::Done);
            }
        };

        let result = self.sender.send(&prepared.request).await;
        let verdict = self.judge(&claimed.team, &prepared, &result).await;
        self.record(&job, claimed, version, number, now, &prepared, &result, verdict).await
    }

    /// What the answer means; a Slack answer that says the channel is gone also marks the
    /// integration broken.
    async fn judge(&self, team: &TeamName, prepared: &Prepared, result: &SendResult) -> Verdict {
        if let Target::Slack { integration_id } = &prepared.target
            && let Some(answer) = slack::broken_answer(result.status, &result.body)
        {
            // The attempt was made: recording it matters more than the mark, which the next
            // delivery to this integration tries again.
            match self.mark_slack_broken(team, integration_id, answer).await {
                Ok(()) => {
                    tracing::warn!(slack_integration_id = %integration_id, answer, "Slack integration marked broken")
                }
                Err(e) => {
                    tracing::error!(slack_integration_id = %integration_id, error = %e, "could not mark the Slack integration broken")
                }
            }
            return Verdict::Failed {
                reason: format!("Slack answered {answer}: the integration is marked broken; reconnect the channel"),
            };
        }
        classify(result.status, result.error.as_ref(), result.retry_after)
    }

    /// Writes the attempt and the execution's new state together and says what the queue
    /// does with the message.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        job: &Job<'_>,
        claimed: Execution,
        version: u64,
        number: u32,
        started: Timestamp,
        prepared: &Prepared,
        result: &SendResult,
        verdict: Verdict,
    ) -> AppResult<Outcome> {
        let secrets: Vec<&str> = prepared.secrets.iter().map(String::as_str).collect();
        let attempt = Attempt {
            number,
            at: started,
            status_code: result.status,
            error: attempt_error(result).map(|e| redact(&e, &secrets)),
            duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
            response_body: redact(&result.body, &secrets),
        };
        let now = self.clock.now();
        let (status, reason, next_attempt_at, outcome) = match verdict {
            Verdict::Delivered => (ExecutionStatus::Delivered, None, None, Outcome::Done),
            Verdict::Failed { reason } => (ExecutionStatus::Failed, Some(reason), None, Outcome::Done),
            Verdict::Retry { .. } if job.manual => {
                let reason = format!("{} (a redeliver is a single attempt)", describe_failure(result));
                (ExecutionStatus::Failed, Some(reason), None, Outcome::Done)
            }
            Verdict::Retry { retry_after } => match self.config.retry.next_delay(number, retry_after, rand01()) {
                Some(delay) => {
                    (ExecutionStatus::Pending, None, Some(after(now, delay)), Outcome::Retry { after: Some(delay) })
                }
                None => {
                    let reason = format!("gave up after {number} attempts; the last: {}", describe_failure(result));
                    (ExecutionStatus::Failed, Some(reason), None, Outcome::Done)
                }
            },
        };
        let reason = reason.map(|r| redact(&r, &secrets));
        tracing::info!(
            status_code = result.status,
            outcome = ?status,
            duration_ms = attempt.duration_ms,
            "delivery attempt finished"
        );

        let mut updated = claimed;
        updated.status = status;
        updated.reason = reason;
        updated.next_attempt_at = next_attempt_at;
        updated.request = Some(prepared.recorded.clone());
        updated.attempt_count = number;
        updated.updated_at = now;
        if self.repo.record_attempt_outcome(version, &updated, &attempt).await? {
            Ok(outcome)
        } else {
            // Our lease ran out and someone else took the execution on: look again.
            tracing::warn!("attempt sent but another worker recorded first; looking again");
            Ok(Outcome::Retry { after: Some(CONFLICT_BACKOFF) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_below_the_tolerance_are_not_worth_a_round_trip() {
        let now = Timestamp::from_second(1_000).unwrap();
        assert_eq!(wait_until(None, now), None);
        assert_eq!(wait_until(Some(after(now, Duration::from_millis(200))), now), None);
        assert_eq!(wait_until(Some(Timestamp::from_second(900).unwrap()), now), None);
        assert_eq!(wait_until(Some(after(now, Duration::from_secs(5))), now), Some(Duration::from_secs(5)));
    }

    #[test]
    fn jitter_randomness_is_in_the_unit_interval() {
        for _ in 0..100 {
            let r = rand01();
            assert!((0.0..1.0).contains(&r));
        }
    }

    #[test]
    fn failures_are_described_without_the_url() {
        let result = SendResult {
            status: None,
            body: String::new(),
            duration: Duration::ZERO,
            error: Some(TransportErrorKind::Refused { reason: "destination address is loopback".into() }),
            error_message: Some("destination address is loopback".into()),
            retry_after: None,
        };
        assert_eq!(describe_failure(&result), "not sent: destination address is loopback");
        assert_eq!(attempt_error(&result).as_deref(), Some("not sent: destination address is loopback"));
        let http = SendResult { status: Some(503), error: None, error_message: None, ..result };
        assert_eq!(describe_failure(&http), "HTTP 503");
        assert_eq!(attempt_error(&http), None);
    }
}
