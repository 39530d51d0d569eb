//! Tokens and roles: who the caller is, and what they may do in a team.

use base64::Engine;
use sha2::{Digest, Sha256};

use super::App;
use super::error::{AppError, AppResult};
use crate::app::repo::keys::secret_path;
use crate::domain::names::{ProjectName, TeamName};
use crate::domain::secret::SecretValue;
use crate::domain::team::{Member, Principal, Role};

/// Hex SHA-256 of a text: how tokens are stored and looked up.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A new API token: `atk_` + 32 random bytes, base64url.
pub fn generate_token() -> AppResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
    Ok(format!("atk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the caller may do in one team.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// The bootstrap system admin: everything.
    System,
    Member(Member),
}

impl Access {
    pub fn is_admin(&self) -> bool {
        match self {
            Access::System => true,
            Access::Member(m) => m.role == Role::Admin,
        }
    }

    /// Team admin (or system): manage secrets, webhooks, integrations, every automation.
    pub fn require_admin(&self) -> AppResult<()> {
        if self.is_admin() { Ok(()) } else { Err(AppError::forbidden("this needs the team's admin role")) }
    }

    /// Read access: admins and members; a producer token may only post events.
    pub fn require_reader(&self) -> AppResult<()> {
        match self {
            Access::Member(m) if m.role == Role::Producer => {
                Err(AppError::forbidden("a producer token may only post events"))
            }
            _ => Ok(()),
        }
    }

    /// May post events for the team: producer or admin (DESIGN §8).
    pub fn require_producer(&self) -> AppResult<()> {
        match self {
            Access::System => Ok(()),
            Access::Member(m) if matches!(m.role, Role::Producer | Role::Admin) => Ok(()),
            Access::Member(_) => Err(AppError::forbidden("posting events needs the producer or admin role")),
        }
    }

    /// May manage automations of `registry` (team admin or registry admin).
    pub fn require_registry_admin(&self, registry: &ProjectName) -> AppResult<()> {
        match self {
            Access::System => Ok(()),
            Access::Member(m) if m.administers_registry(registry.as_str()) => Ok(()),
            Access::Member(_) => {
                Err(AppError::forbidden(format!("this needs the team's admin role or admin of registry {registry}")))
            }
        }
    }
}

impl App {
    /// Ensures the system admin token exists: `fixed` replaces it, otherwise one is generated
    /// on first start. Returns the token when it was set or generated now (to print it once).
    pub async fn bootstrap_admin_token(&self, fixed: Option<&str>) -> AppResult<Option<String>> {
        if let Some(token) = fixed {
            let value = SecretValue::new(token).map_err(AppError::Invalid)?;
            self.secrets.put(secret_path::ADMIN_TOKEN, &value).await?;
            return Ok(Some(token.to_owned()));
        }
        if self.secrets.get(secret_path::ADMIN_TOKEN).await?.is_some() {
            return Ok(None);
        }
        let token = generate_token()?;
        let value = SecretValue::new(token.clone()).map_err(AppError::Invalid)?;
        self.secrets.put(secret_path::ADMIN_TOKEN, &value).await?;
        Ok(Some(token))
    }

    /// Who holds this bearer token.
    pub async fn authenticate(&self, bearer: &str) -> AppResult<Principal> {
        if bearer.is_empty() || bearer.len() > 512 {
            return Err(AppError::Unauthenticated);
        }
        if let Some(admin) = self.secrets.get(secret_path::ADMIN_TOKEN).await?
            && constant_time_eq(sha256_hex(admin.expose()).as_bytes(), sha256_hex(bearer).as_bytes())
        {
            return Ok(Principal::System);
        }
        match self.repo.user_of_token(&sha256_hex(bearer)).await? {
            Some(user) => Ok(Principal::User(user)),
            None => Err(AppError::Unauthenticated),
        }
    }

    /// The caller's access to `team`: 404 when the team does not exist or the caller has no
    /// role in it (so team names do not leak), 403 later for a missing permission.
    pub async fn access(&self, who: &Principal, team: &TeamName) -> AppResult<Access> {
        match who {
            Principal::System => {
                if self.repo.team(team).await?.is_none() {
                    return Err(AppError::not_found(format!("team {team}")));
                }
                Ok(Access::System)
            }
            Principal::User(user) => match self.repo.member(team, user).await? {
                Some(member) => Ok(Access::Member(member)),
                None => Err(AppError::not_found(format!("team {team}"))),
            },
        }
    }

    pub fn require_system(who: &Principal) -> AppResult<()> {
        match who {
            Principal::System => Ok(()),
            Principal::User(_) => Err(AppError::forbidden("this needs the system admin token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert!(a.starts_with("atk_") && a.len() > 40);
        assert_ne!(a, b);
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
