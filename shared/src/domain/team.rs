//! Teams, users, members and their roles.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::names::{ProjectName, TeamName, UserName};

/// A team (W&B "entity"): owns secrets, webhooks, Slack integrations and automations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Team {
    pub name: TeamName,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// A user; the API token is held only as its SHA-256 hash, in its own item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: UserName,
    pub created_at: Timestamp,
}

/// What a member may do within one team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages secrets, webhooks, Slack integrations and every automation of the team.
    Admin,
    /// Reads automations, integrations and history; never a secret value.
    Member,
    /// May only post events for the team: the token an event source runs with.
    Producer,
}

/// A user's membership of a team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Member {
    pub user: UserName,
    pub role: Role,
    /// Registries whose automations this member may manage (registry admin).
    #[serde(default)]
    pub registries: Vec<ProjectName>,
}

impl Member {
    /// Whether this member may create, change or delete automations scoped to `registry`.
    pub fn administers_registry(&self, registry: &str) -> bool {
        self.role == Role::Admin || self.registries.iter().any(|r| r.as_str() == registry)
    }
}

/// Who is calling: the bootstrap system admin or a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    System,
    User(UserName),
}

impl Principal {
    /// The name recorded as `created_by` / `installed_by`.
    pub fn name(&self) -> &str {
        match self {
            Principal::System => "system",
            Principal::User(u) => u.as_str(),
        }
    }
}
