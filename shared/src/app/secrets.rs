//! Team secrets: the value goes to the SecretStore only, the table keeps metadata (DESIGN §3).

use serde::Deserialize;

use super::App;
use super::error::{AppError, AppResult};
use super::repo::Listed;
use super::repo::keys::secret_path;
use crate::domain::names::{SecretName, TeamName};
use crate::domain::secret::{SecretMeta, SecretValue};
use crate::domain::team::Principal;

/// `POST /v1/teams/{team}/secrets`. Has no `Debug`, so the value cannot be logged by accident.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretIn {
    pub name: SecretName,
    /// 1 byte to 64 KiB; never shown again.
    pub value: String,
}

/// `PUT /v1/teams/{team}/secrets/{name}`: a new value.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValueIn {
    pub value: String,
}

impl App {
    #[tracing::instrument(skip_all, fields(team = %team, secret = %input.name))]
    pub async fn create_secret(&self, who: &Principal, team: &TeamName, input: SecretIn) -> AppResult<SecretMeta> {
        self.access(who, team).await?.require_admin()?;
        let value = SecretValue::new(input.value)?;
        let now = self.clock.now();
        let meta = SecretMeta { name: input.name, created_at: now, updated_at: now };
        // Metadata first, conditionally: a taken name is refused before any value is written,
        // so a create can never overwrite the value of an existing secret.
        self.repo.create_secret_meta(team, &meta).await?;
        if let Err(e) = self.secrets.put(&secret_path::team_secret(team, &meta.name), &value).await {
            if let Err(undo) = self.repo.delete_secret_meta(team, &meta.name).await {
                tracing::warn!(error = %undo, "could not remove the metadata of a secret whose value was not stored");
            }
            return Err(e.into());
        }
        Ok(meta)
    }

    pub async fn list_secrets(
        &self,
        who: &Principal,
        team: &TeamName,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<SecretMeta>> {
        self.access(who, team).await?.require_reader()?;
        self.repo.secret_metas(team, limit, cursor).await
    }

    /// Replaces the value; the cache of this process forgets it, others within 5 minutes.
    #[tracing::instrument(skip_all, fields(team = %team, secret = %name))]
    pub async fn rotate_secret(
        &self,
        who: &Principal,
        team: &TeamName,
        name: &SecretName,
        input: SecretValueIn,
    ) -> AppResult<SecretMeta> {
        self.access(who, team).await?.require_admin()?;
        let Some(old) = self.repo.secret_meta(team, name).await? else {
            return Err(AppError::not_found(format!("secret {name}")));
        };
        let value = SecretValue::new(input.value)?;
        self.secrets.put(&secret_path::team_secret(team, name), &value).await?;
        let meta = SecretMeta { updated_at: self.clock.now(), ..old.value };
        self.repo.update(&super::repo::keys::secret(team, name), &meta, old.version).await?;
        Ok(meta)
    }

    /// Deletes a secret no webhook refers to (409 otherwise, naming the webhooks).
    #[tracing::instrument(skip_all, fields(team = %team, secret = %name))]
    pub async fn delete_secret(&self, who: &Principal, team: &TeamName, name: &SecretName) -> AppResult<()> {
        self.access(who, team).await?.require_admin()?;
        if self.repo.secret_meta(team, name).await?.is_none() {
            return Err(AppError::not_found(format!("secret {name}")));
        }
        let users: Vec<String> = self
            .repo
            .all_webhooks(team)
            .await?
            .into_iter()
            .filter(|w| w.secret_names().any(|s| s == name))
            .map(|w| format!("{:?} ({})", w.name.as_str(), w.id))
            .collect();
        if !users.is_empty() {
            return Err(AppError::conflict(format!(
                "secret {name} is used by webhook {}; change or delete the webhook first",
                users.join(", ")
            )));
        }
        // Metadata first: once it is gone no new webhook can refer to the secret, and a value
        // left behind by a crash is overwritten by the next secret of that name.
        self.repo.delete_secret_meta(team, name).await?;
        self.secrets.delete(&secret_path::team_secret(team, name)).await?;
        Ok(())
    }
}
