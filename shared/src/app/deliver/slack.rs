//! Slack incoming-webhook answers (DESIGN §7): which ones mean the channel or the token is gone
//! for good, and marking the integration broken when Slack says so.

use serde_json::Value;

use crate::app::App;
use crate::app::error::{AppError, AppResult};
use crate::app::repo::keys;
use crate::domain::names::{ObjectId, TeamName};
use crate::domain::slack::IntegrationState;

/// Slack's answers that no retry can fix: the integration is marked broken and the execution
/// fails at once. Slack sends them as the plain-text body of a 4xx.
pub const BROKEN_ANSWERS: &[&str] =
    &["channel_not_found", "channel_is_archived", "invalid_token", "action_prohibited", "no_service"];

/// The Slack error that breaks the integration, if this answer is one. A bare 410 counts as
/// `channel_is_archived`, the only thing Slack answers 410 for.
pub fn broken_answer(status: Option<u16>, body: &str) -> Option<&'static str> {
    let status = status?;
    if !(400..500).contains(&status) {
        return None;
    }
    let body = body.trim();
    // Plain text is what Slack sends; a JSON `{"ok":false,"error":…}` is taken as well.
    let json_error = serde_json::from_str::<Value>(body).ok().and_then(|v| v.get("error")?.as_str().map(str::to_owned));
    let code = json_error.as_deref().unwrap_or(body);
    BROKEN_ANSWERS.iter().copied().find(|known| *known == code).or((status == 410).then_some("channel_is_archived"))
}

impl App {
    /// Marks a Slack integration broken with Slack's answer as the reason, so the UI can ask
    /// for a reconnect. A reinstall through OAuth makes it active again.
    pub async fn mark_slack_broken(&self, team: &TeamName, id: &ObjectId, reason: &str) -> AppResult<()> {
        // One retry covers a concurrent edit; beyond that the next failed delivery tries again.
        for _ in 0..2 {
            let Some(current) = self.repo.slack(team, id).await? else { return Ok(()) };
            if current.value.state == IntegrationState::Broken && current.value.broken_reason.as_deref() == Some(reason)
            {
                return Ok(());
            }
            let mut broken = current.value.clone();
            broken.state = IntegrationState::Broken;
            broken.broken_reason = Some(reason.to_owned());
            match self.repo.update(&keys::slack(team, id), &broken, current.version).await {
                Err(AppError::Conflict(_)) => continue,
                other => return other,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_answers_that_mean_the_channel_is_gone_break_the_integration() {
        assert_eq!(broken_answer(Some(410), "channel_is_archived"), Some("channel_is_archived"));
        assert_eq!(broken_answer(Some(404), "channel_not_found\n"), Some("channel_not_found"));
        assert_eq!(broken_answer(Some(403), "invalid_token"), Some("invalid_token"));
        assert_eq!(broken_answer(Some(403), "action_prohibited"), Some("action_prohibited"));
        assert_eq!(broken_answer(Some(404), "no_service"), Some("no_service"));
        assert_eq!(broken_answer(Some(404), r#"{"ok":false,"error":"no_service"}"#), Some("no_service"));
        assert_eq!(broken_answer(Some(410), ""), Some("channel_is_archived"));
    }

    #[test]
    fn other_answers_do_not_break_the_integration() {
        assert_eq!(broken_answer(Some(200), "ok"), None);
        assert_eq!(broken_answer(Some(400), "invalid_payload"), None);
        assert_eq!(broken_answer(Some(429), "rate_limited"), None);
        assert_eq!(broken_answer(Some(500), "channel_not_found"), None);
        assert_eq!(broken_answer(None, ""), None);
    }
}
