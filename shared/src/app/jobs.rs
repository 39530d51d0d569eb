//! Typed queue messages (svix's `QueueTask`): what ingest puts on the deliveries queue.

use serde::{Deserialize, Serialize};

use crate::domain::names::{ObjectId, TeamName};

/// One delivery job: send attempt `attempt` of an execution. Idempotent by
/// (execution, attempt): a duplicate message after success sends nothing, and a redeliver
/// enqueues the next attempt number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeliveryTask {
    Deliver {
        team: TeamName,
        execution_id: ObjectId,
        attempt: u32,
    },
    /// A manual redeliver from the history (`POST .../redeliver`): exactly one attempt,
    /// numbered `attempt`, whose result sets the status; never retried automatically.
    Redeliver {
        team: TeamName,
        execution_id: ObjectId,
        attempt: u32,
    },
}

impl DeliveryTask {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
