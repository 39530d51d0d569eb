//! Slack integrations as the config API sees them: list, read, remove. They are created by the
//! OAuth flow (slack-oauth), never through this API.

use super::App;
use super::error::{AppError, AppResult};
use super::repo::Listed;
use super::repo::keys::secret_path;
use crate::domain::automation::Action;
use crate::domain::names::{ObjectId, TeamName};
use crate::domain::slack::SlackIntegration;
use crate::domain::team::Principal;

impl App {
    pub async fn list_slack_integrations(
        &self,
        who: &Principal,
        team: &TeamName,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<SlackIntegration>> {
        self.access(who, team).await?.require_reader()?;
        self.repo.slacks(team, limit, cursor).await
    }

    pub async fn get_slack_integration(
        &self,
        who: &Principal,
        team: &TeamName,
        id: &ObjectId,
    ) -> AppResult<SlackIntegration> {
        self.access(who, team).await?.require_reader()?;
        match self.repo.slack(team, id).await? {
            Some(found) => Ok(found.value),
            None => Err(AppError::not_found(format!("slack integration {id}"))),
        }
    }

    /// Removes an integration no automation uses (409 otherwise, naming them), and its
    /// incoming-webhook URL and token. The Slack app stays installed in the workspace: the
    /// workspace's admins remove it there (its configuration_url links to the page).
    #[tracing::instrument(skip_all, fields(team = %team, integration_id = %id))]
    pub async fn delete_slack_integration(&self, who: &Principal, team: &TeamName, id: &ObjectId) -> AppResult<()> {
        self.access(who, team).await?.require_admin()?;
        let Some(found) = self.repo.slack(team, id).await? else {
            return Err(AppError::not_found(format!("slack integration {id}")));
        };
        let users = self
            .automations_using(team, |a| matches!(a, Action::Slack { integration_id, .. } if integration_id == id))
            .await?;
        if !users.is_empty() {
            return Err(AppError::conflict(format!(
                "slack integration {id} is used by automation {}; change or delete the automation first",
                users.join(", ")
            )));
        }
        self.repo.delete_slack(team, &found.value).await?;
        self.secrets.delete(&secret_path::slack(team, id)).await?;
        Ok(())
    }
}
