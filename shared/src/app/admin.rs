//! System administration and team membership: users, teams, members (DESIGN §3, §8).

use serde::{Deserialize, Serialize};

use super::App;
use super::auth::{generate_token, sha256_hex};
use super::error::{AppError, AppResult};
use super::repo::Listed;
use crate::domain::names::{ProjectName, TeamName, UserName};
use crate::domain::team::{Member, Principal, Role, Team, User};

/// `POST /v1/users`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    pub name: UserName,
}

/// A new user and their API token: the only time the token is ever shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserCreated {
    pub name: UserName,
    pub token: String,
}

/// `POST /v1/teams`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamIn {
    pub name: TeamName,
}

/// `PUT /v1/teams/{team}/members/{user}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberIn {
    pub role: Role,
    /// Registries whose automations this member may manage; only with the `member` role.
    #[serde(default)]
    pub registries: Vec<ProjectName>,
}

impl App {
    /// Creates a user and returns their token once; only its SHA-256 is stored.
    #[tracing::instrument(skip_all, fields(user = %input.name))]
    pub async fn create_user(&self, who: &Principal, input: UserIn) -> AppResult<UserCreated> {
        App::require_system(who)?;
        let token = generate_token()?;
        let user = User { name: input.name, created_at: self.clock.now() };
        self.repo.create_user(&user, &sha256_hex(&token)).await?;
        Ok(UserCreated { name: user.name, token })
    }

    #[tracing::instrument(skip_all, fields(team = %input.name))]
    pub async fn create_team(&self, who: &Principal, input: TeamIn) -> AppResult<Team> {
        App::require_system(who)?;
        let team = Team { name: input.name, created_at: self.clock.now() };
        self.repo.create_team(&team).await?;
        Ok(team)
    }

    /// Grants or changes a role. The user must exist: an unknown user in the path is a 404,
    /// like any other resource named by the path.
    #[tracing::instrument(skip_all, fields(team = %team, user = %user))]
    pub async fn put_member(
        &self,
        who: &Principal,
        team: &TeamName,
        user: &UserName,
        input: MemberIn,
    ) -> AppResult<Member> {
        self.access(who, team).await?.require_admin()?;
        if self.repo.user(user).await?.is_none() {
            return Err(AppError::not_found(format!("user {user}")));
        }
        // Admins already manage every registry, and a producer may only post events: registries
        // on either would be misleading (and on a producer, a privilege escalation).
        if input.role != Role::Member && !input.registries.is_empty() {
            return Err(AppError::invalid("registries", "only the member role takes registries"));
        }
        for (i, registry) in input.registries.iter().enumerate() {
            // The registry's project name (`wandb-registry-<R>`) must itself be a valid name.
            ProjectName::of_registry(registry).map_err(|e| AppError::Invalid(e.under(&format!("registries[{i}]"))))?;
        }
        let mut registries = input.registries;
        registries.sort();
        registries.dedup();
        let member = Member { user: user.clone(), role: input.role, registries };
        self.repo.put_member(team, &member).await?;
        Ok(member)
    }

    pub async fn list_members(
        &self,
        who: &Principal,
        team: &TeamName,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<Member>> {
        self.access(who, team).await?.require_reader()?;
        self.repo.members(team, limit, cursor).await
    }

    #[tracing::instrument(skip_all, fields(team = %team, user = %user))]
    pub async fn remove_member(&self, who: &Principal, team: &TeamName, user: &UserName) -> AppResult<()> {
        self.access(who, team).await?.require_admin()?;
        self.repo.delete_member(team, user).await
    }
}
