//! Slack integrations: one channel of one Slack workspace, connected through OAuth.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::names::ObjectId;

/// Whether Slack still accepts messages for the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationState {
    Active,
    /// Slack said the channel or token is gone; `broken_reason` says what Slack answered.
    Broken,
}

/// A connected Slack channel. Its incoming-webhook URL and bot token are secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlackIntegration {
    pub id: ObjectId,
    pub channel: String,
    pub channel_id: String,
    pub slack_team_id: String,
    pub slack_team_name: String,
    pub configuration_url: String,
    pub state: IntegrationState,
    pub broken_reason: Option<String>,
    /// `system` when the bootstrap admin installed it.
    #[schema(value_type = String)]
    pub installed_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// What the secret store keeps for an integration (JSON): never shown by the API.
#[derive(Clone, Serialize, Deserialize)]
pub struct SlackCredentials {
    pub incoming_webhook_url: String,
    pub access_token: String,
}

impl std::fmt::Debug for SlackCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlackCredentials(***)")
    }
}

/// The registered Slack app (system-wide); the client secret is a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlackApp {
    pub client_id: String,
}
