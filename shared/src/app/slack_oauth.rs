//! Connecting a Slack channel (DESIGN §9): the system admin registers the Slack app, a team
//! admin asks for a single-use install link, the browser goes to Slack and back, and the
//! callback stores the channel's incoming webhook.
//!
//! Three single-use, short-lived proofs chain the steps: the install ticket (stored hashed),
//! the signed OAuth state (its nonce stored in the table), and a cookie holding the same nonce
//! (so a callback only completes in the browser that started the flow).

pub mod exchange;
pub mod state;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::App;
use super::auth::{constant_time_eq, sha256_hex};
use super::error::{AppError, AppResult};
use super::repo::keys::{self, secret_path};
use crate::domain::error::Faults;
use crate::domain::names::{ObjectId, TeamName, UserName};
use crate::domain::secret::SecretValue;
use crate::domain::slack::{IntegrationState, SlackCredentials, SlackIntegration};
use crate::domain::team::Principal;
use crate::ports::error::StoreError;
use crate::ports::table::{Condition, Item};
use exchange::{ExchangeError, ExchangeRequest};
use state::{OAuthState, StateKey};

/// How long an install link, and then the trip through Slack, may take.
pub const INSTALL_TTL_SECONDS: i64 = 600;
/// The only scope asked for: one channel's incoming webhook.
pub const SLACK_SCOPE: &str = "incoming-webhook";
/// The cookie holding the nonce of the flow this browser started.
pub const NONCE_COOKIE: &str = "automations_slack_oauth";
/// The path the cookie is scoped to (both browser routes live under it).
pub const COOKIE_PATH: &str = "/slack";

/// The registered Slack app. The client secret never leaves the secret store but for the
/// code exchange.
#[derive(Debug, Clone)]
pub struct SlackAppRegistration {
    pub client_id: String,
    pub client_secret: SecretValue,
}

/// How the app is kept in the secret store (JSON).
#[derive(Serialize, Deserialize)]
struct StoredSlackApp {
    client_id: String,
    client_secret: String,
}

/// What `GET /v1/admin/slack-app` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackAppStatus {
    pub client_id: Option<String>,
    pub configured: bool,
    /// The URL to enter as the Slack app's redirect URL.
    pub redirect_url: String,
}

/// Who an install ticket was issued to (stored at `TICKET#<sha256>`).
#[derive(Serialize, Deserialize)]
struct TicketData {
    team: TeamName,
    /// `None` for the system admin.
    user: Option<UserName>,
}

/// Where to send the browser at the start of the flow, and the nonce for its cookie.
#[derive(Debug, Clone)]
pub struct AuthorizeRedirect {
    pub authorize_url: String,
    pub nonce: String,
    pub max_age_seconds: i64,
}

/// The query Slack sends the browser back with.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// A channel connected to a team.
#[derive(Debug, Clone)]
pub struct Connected {
    pub team: TeamName,
    pub integration: SlackIntegration,
}

/// Why a browser step of the flow stopped. Nothing is stored in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the install link has no ticket")]
    MissingTicket,
    #[error("the install link is invalid, expired or already used")]
    InvalidTicket,
    #[error("the Slack user did not allow the app")]
    AccessDenied,
    #[error("Slack did not authorize the app: {0}")]
    AuthorizeFailed(String),
    #[error("the callback has no state")]
    MissingState,
    #[error("the state was not issued by this service")]
    InvalidState,
    #[error("the state has expired")]
    ExpiredState,
    #[error("the state was already used")]
    ReplayedState,
    #[error("the browser has no cookie of this flow")]
    MissingCookie,
    #[error("the browser's cookie belongs to another flow")]
    CookieMismatch,
    #[error("the callback has no code")]
    MissingCode,
    /// The user who asked is no longer an admin of the team (or the team is gone).
    #[error("not allowed: {0}")]
    NotAllowed(String),
    #[error("no Slack app is registered")]
    NotRegistered,
    #[error(transparent)]
    Slack(#[from] ExchangeError),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<StoreError> for ConnectError {
    fn from(e: StoreError) -> Self {
        ConnectError::App(AppError::Store(e))
    }
}

fn random_token() -> AppResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn principal_user(who: &Principal) -> Option<UserName> {
    match who {
        Principal::System => None,
        Principal::User(u) => Some(u.clone()),
    }
}

fn installed_by(user: &Option<UserName>) -> String {
    user.as_ref().map_or_else(|| Principal::System.name().to_owned(), |u| u.to_string())
}

/// Client ids and secrets are short printable tokens (Slack's are digits and dots, and hex).
fn check_credential(faults: &mut Faults, field: &str, value: &str) {
    if value.is_empty() {
        faults.push(field, "must not be empty");
    } else if value.len() > 256 {
        faults.push(field, "must be at most 256 characters");
    } else if !value.chars().all(|c| c.is_ascii_graphic()) {
        faults.push(field, "must be printable ASCII without spaces");
    }
}

impl App {
    /// The redirect URL the Slack app must list: `<public base>/slack/oauth/callback`.
    pub fn slack_redirect_url(&self) -> String {
        format!("{}/slack/oauth/callback", self.config.public_base_url)
    }

    /// Registers (or replaces) the Slack app. System admin only.
    pub async fn register_slack_app(&self, who: &Principal, client_id: &str, client_secret: &str) -> AppResult<()> {
        App::require_system(who)?;
        let mut faults = Faults::default();
        check_credential(&mut faults, "client_id", client_id);
        check_credential(&mut faults, "client_secret", client_secret);
        faults.finish(|| ())?;
        let stored = StoredSlackApp { client_id: client_id.to_owned(), client_secret: client_secret.to_owned() };
        let json = serde_json::to_string(&stored).map_err(|e| AppError::Internal(format!("encoding: {e}")))?;
        self.secrets.put(secret_path::SLACK_APP, &SecretValue::new(json)?).await?;
        tracing::info!(client_id, "Slack app registered");
        Ok(())
    }

    /// The registered app, if any.
    pub async fn slack_app(&self) -> AppResult<Option<SlackAppRegistration>> {
        let Some(value) = self.secrets.get(secret_path::SLACK_APP).await? else { return Ok(None) };
        let stored: StoredSlackApp = serde_json::from_str(value.expose())
            .map_err(|_| AppError::Internal("the stored Slack app does not decode".into()))?;
        Ok(Some(SlackAppRegistration {
            client_id: stored.client_id,
            client_secret: SecretValue::new(stored.client_secret)?,
        }))
    }

    /// What is registered, without the secret. System admin only.
    pub async fn slack_app_status(&self, who: &Principal) -> AppResult<SlackAppStatus> {
        App::require_system(who)?;
        let client_id = self.slack_app().await?.map(|a| a.client_id);
        Ok(SlackAppStatus { configured: client_id.is_some(), client_id, redirect_url: self.slack_redirect_url() })
    }

    /// A single-use install link for `team`, valid for 10 minutes. Team admin only; 503 while
    /// no Slack app is registered (the link could not work).
    pub async fn create_slack_install_link(&self, who: &Principal, team: &TeamName) -> AppResult<String> {
        self.access(who, team).await?.require_admin()?;
        if self.slack_app().await?.is_none() {
            return Err(AppError::Unavailable(
                "no Slack app is registered; the system admin registers one with PUT /v1/admin/slack-app".into(),
            ));
        }
        let ticket = random_token()?;
        let data = TicketData { team: team.clone(), user: principal_user(who) };
        let key = keys::ticket(&sha256_hex(&ticket));
        let expires = self.repo.now().as_second() + INSTALL_TTL_SECONDS;
        let item = Item::new(key.pk, key.sk, super::repo::encode(&data)?).expiring_at(expires);
        self.repo.table.put(item, Condition::Absent).await.map_err(|e| match e {
            StoreError::ConditionFailed => AppError::Internal("install ticket collision".into()),
            other => AppError::Store(other),
        })?;
        Ok(format!("{}/slack/install?ticket={ticket}", self.config.public_base_url))
    }

    /// `GET /slack/install`: spends the ticket and starts the trip through Slack.
    pub async fn start_slack_install(&self, ticket: Option<&str>) -> Result<AuthorizeRedirect, ConnectError> {
        let ticket = ticket.filter(|t| !t.is_empty()).ok_or(ConnectError::MissingTicket)?;
        // Before the ticket is spent: a link opened before the app is registered still works after.
        let slack_app = self.slack_app().await?.ok_or(ConnectError::NotRegistered)?;
        let data = self.spend_ticket(ticket).await?;

        let key = self.ensure_state_key().await?;
        let nonce = random_token()?;
        let exp = self.repo.now().as_second() + INSTALL_TTL_SECONDS;
        let state_key = keys::oauth_state(&nonce);
        let item = Item::new(state_key.pk, state_key.sk, json!({ "team": data.team })).expiring_at(exp);
        self.repo.table.put(item, Condition::Absent).await?;
        let state = OAuthState { nonce: nonce.clone(), team: data.team, user: data.user, exp }.sign(&key);

        let mut url = url::Url::parse(&format!("{}/oauth/v2/authorize", self.config.slack_base_url))
            .map_err(|e| AppError::Internal(format!("SLACK_BASE_URL is not a URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("client_id", &slack_app.client_id)
            .append_pair("scope", SLACK_SCOPE)
            .append_pair("redirect_uri", &self.slack_redirect_url())
            .append_pair("state", &state);
        Ok(AuthorizeRedirect { authorize_url: url.into(), nonce, max_age_seconds: INSTALL_TTL_SECONDS })
    }

    /// Deletes the ticket if it is live: of two concurrent visits, one wins the delete.
    async fn spend_ticket(&self, ticket: &str) -> Result<TicketData, ConnectError> {
        let key = keys::ticket(&sha256_hex(ticket));
        let item = self.repo.table.get(&key).await?.ok_or(ConnectError::InvalidTicket)?;
        match self.repo.table.delete(&key, Condition::Exists).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed) => return Err(ConnectError::InvalidTicket),
            Err(e) => return Err(e.into()),
        }
        serde_json::from_value(item.data).map_err(|_| ConnectError::InvalidTicket)
    }

    /// The state signing key, created on first use. Two processes racing to create it both
    /// read back what the store kept last, so they agree once the race is over.
    async fn ensure_state_key(&self) -> AppResult<StateKey> {
        if let Some(key) = self.state_key().await? {
            return Ok(key);
        }
        let key = StateKey::generate().map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
        self.secrets.put(secret_path::OAUTH_STATE_KEY, &SecretValue::new(STANDARD.encode(key.bytes()))?).await?;
        self.state_key().await?.ok_or_else(|| AppError::Internal("the state key vanished after writing it".into()))
    }

    /// The key is base64 of random bytes when this service made it; a deployment may instead
    /// provision it up front (SAM generates a 64-character random text, so concurrent cold
    /// starts can never each create a different key): text of 32+ bytes is used as is.
    async fn state_key(&self) -> AppResult<Option<StateKey>> {
        let Some(value) = self.secrets.get(secret_path::OAUTH_STATE_KEY).await? else { return Ok(None) };
        let bytes = STANDARD
            .decode(value.expose())
            .ok()
            .filter(|b| StateKey::new(b.clone()).is_some())
            .unwrap_or_else(|| value.expose().as_bytes().to_vec());
        StateKey::new(bytes)
            .map(Some)
            .ok_or_else(|| AppError::Internal("the stored OAuth state key is too short (32 bytes at least)".into()))
    }

    /// `GET /slack/oauth/callback`: checks the state (signature, expiry, cookie, single use),
    /// exchanges the code and stores the channel. `cookie_nonce` is the flow cookie's value.
    pub async fn finish_slack_install(
        &self,
        params: &CallbackParams,
        cookie_nonce: Option<&str>,
    ) -> Result<Connected, ConnectError> {
        if let Some(error) = params.error.as_deref() {
            // The user cancelled (or Slack refused): spend the state so it cannot be used later.
            if let Some(text) = params.state.as_deref()
                && let Ok(Some(key)) = self.state_key().await
                && let Ok(claims) = OAuthState::verify(text, &key)
            {
                let _ = self.repo.table.delete(&keys::oauth_state(&claims.nonce), Condition::Exists).await;
            }
            return Err(if error == "access_denied" {
                ConnectError::AccessDenied
            } else {
                let shown: String =
                    error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(100).collect();
                ConnectError::AuthorizeFailed(shown)
            });
        }

        let text = params.state.as_deref().filter(|s| !s.is_empty()).ok_or(ConnectError::MissingState)?;
        // No key means no state was ever issued here; nothing to create at a callback.
        let key = self.state_key().await?.ok_or(ConnectError::InvalidState)?;
        let claims = OAuthState::verify(text, &key).map_err(|_| ConnectError::InvalidState)?;
        if claims.exp <= self.repo.now().as_second() {
            return Err(ConnectError::ExpiredState);
        }
        let cookie = cookie_nonce.filter(|c| !c.is_empty()).ok_or(ConnectError::MissingCookie)?;
        if !constant_time_eq(cookie.as_bytes(), claims.nonce.as_bytes()) {
            return Err(ConnectError::CookieMismatch);
        }
        let code = params.code.as_deref().filter(|c| !c.is_empty()).ok_or(ConnectError::MissingCode)?;
        let slack_app = self.slack_app().await?.ok_or(ConnectError::NotRegistered)?;
        match self.repo.table.delete(&keys::oauth_state(&claims.nonce), Condition::Exists).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed) => return Err(ConnectError::ReplayedState),
            Err(e) => return Err(e.into()),
        }
        // Ten minutes may have passed since the link was issued: the asker must still be allowed.
        let who = claims.user.clone().map_or(Principal::System, Principal::User);
        match self.access(&who, &claims.team).await.and_then(|a| a.require_admin()) {
            Ok(()) => {}
            Err(AppError::NotFound(_) | AppError::Forbidden(_)) => {
                return Err(ConnectError::NotAllowed(format!(
                    "{} is no longer an admin of team {}",
                    who.name(),
                    claims.team
                )));
            }
            Err(e) => return Err(e.into()),
        }

        let redirect_uri = self.slack_redirect_url();
        let installation = exchange::exchange_code(&ExchangeRequest {
            api_base_url: &self.config.slack_api_base_url,
            code,
            client_id: &slack_app.client_id,
            client_secret: &slack_app.client_secret,
            redirect_uri: &redirect_uri,
        })
        .await?;

        let integration = SlackIntegration {
            id: ObjectId::generate("si"),
            channel: installation.channel.clone(),
            channel_id: installation.channel_id.clone(),
            slack_team_id: installation.slack_team_id.clone(),
            slack_team_name: installation.slack_team_name.clone(),
            configuration_url: installation.configuration_url.clone(),
            state: IntegrationState::Active,
            broken_reason: None,
            installed_by: installed_by(&claims.user),
            created_at: self.repo.now(),
        };
        let stored = self.repo.upsert_slack(&claims.team, &integration).await?;
        let credentials = SlackCredentials {
            incoming_webhook_url: installation.incoming_webhook_url,
            access_token: installation.access_token,
        };
        if let Err(e) = store_credentials(self, &claims.team, &stored.id, &credentials).await {
            // A new integration without credentials could never deliver: take it back.
            if stored.id == integration.id
                && let Err(undo) = self.repo.delete_slack(&claims.team, &stored).await
            {
                tracing::error!(error = %undo, integration_id = %stored.id, "could not undo a Slack integration without credentials");
            }
            return Err(e.into());
        }
        tracing::info!(team = %claims.team, integration_id = %stored.id, channel_id = %stored.channel_id, "Slack channel connected");
        Ok(Connected { team: claims.team, integration: stored })
    }

    /// The OAuth state key, for tests that need to forge an expired state.
    pub async fn oauth_state_key(&self) -> AppResult<StateKey> {
        self.ensure_state_key().await
    }
}

/// Writes an integration's incoming-webhook URL and token (JSON) to the secret store.
async fn store_credentials(app: &App, team: &TeamName, id: &ObjectId, credentials: &SlackCredentials) -> AppResult<()> {
    let json = serde_json::to_string(credentials).map_err(|e| AppError::Internal(format!("encoding: {e}")))?;
    Ok(app.secrets.put(&secret_path::slack(team, id), &SecretValue::new(json)?).await?)
}
