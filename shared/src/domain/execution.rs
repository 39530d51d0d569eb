//! Executions: one automation fired by one event, with every delivery attempt.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::names::{EventId, ObjectId, TeamName};

/// Executions are kept 30 days.
pub const EXECUTION_RETENTION_SECONDS: i64 = 30 * 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Waiting for its first or next attempt.
    Pending,
    Delivered,
    /// Every automatic attempt failed, or the receiver refused it for good; redeliverable.
    Failed,
    /// Nothing was sent (a `no_op` action).
    Skipped,
}

/// The request as it was (or would be) sent, with secret values replaced by `***`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordedRequest {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

/// One try at delivering an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    pub number: u32,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    /// The receiver's answer, at most 16 KiB.
    pub response_body: String,
}

/// The metric figure that fired a metric automation (`${metric_name}`, `${metric_value}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FiredMetric {
    pub name: String,
    /// JSON has no NaN: non-finite values are kept as text (`NaN`, `Infinity`).
    pub value: String,
}

/// An execution as stored (attempts are separate items) and shown (attempts filled in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Execution {
    pub id: ObjectId,
    pub team: TeamName,
    pub automation_id: ObjectId,
    pub event_id: EventId,
    /// The automation's event type (`RUN_METRIC`, `ADD_ARTIFACT_ALIAS`, …).
    pub event_type: String,
    pub status: ExecutionStatus,
    pub reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    pub request: Option<RecordedRequest>,
    /// Attempts made so far, automatic and redelivered.
    pub attempt_count: u32,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// The event document that fired it, kept so a redeliver can render it again.
    #[schema(value_type = Object)]
    pub event: Value,
    pub metric: Option<FiredMetric>,
}

impl Execution {
    /// A new execution waiting for its first attempt, with its derived id.
    pub fn pending(
        team: TeamName,
        event_id: EventId,
        automation_id: ObjectId,
        event_type: impl Into<String>,
        event: Value,
        metric: Option<FiredMetric>,
        now: Timestamp,
    ) -> Execution {
        Execution {
            id: Execution::derive_id(&team, &event_id, &automation_id),
            team,
            automation_id,
            event_id,
            event_type: event_type.into(),
            status: ExecutionStatus::Pending,
            reason: None,
            created_at: now,
            updated_at: now,
            next_attempt_at: None,
            request: None,
            attempt_count: 0,
            attempts: Vec::new(),
            event,
            metric,
        }
    }

    /// Derived from (team, event id, automation id), so a replayed event maps to the same
    /// execution and a conditional create cannot double it.
    pub fn derive_id(team: &TeamName, event_id: &EventId, automation_id: &ObjectId) -> ObjectId {
        let digest = Sha256::digest(format!("{team}\n{event_id}\n{automation_id}").as_bytes());
        let hex = hex::encode(&digest[..16]);
        match ObjectId::parse(format!("ex_{hex}")) {
            Ok(id) => id,
            // 32 hex characters always match the id pattern.
            Err(_) => ObjectId::generate("ex"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_ids_are_stable_per_team_event_and_automation() {
        let t = TeamName::parse("t").unwrap();
        let e = EventId::parse("e1").unwrap();
        let a = ObjectId::parse("au_0123456789ABCDEFGHJKMNPQRS").unwrap();
        let b = ObjectId::parse("au_1123456789ABCDEFGHJKMNPQRS").unwrap();
        assert_eq!(Execution::derive_id(&t, &e, &a), Execution::derive_id(&t, &e, &a));
        assert_ne!(Execution::derive_id(&t, &e, &a), Execution::derive_id(&t, &e, &b));
        assert_eq!(Execution::derive_id(&t, &e, &a).kind(), "ex");
    }
}
