//! Exchanging an authorization code for an incoming webhook: `POST <api base>/api/oauth.v2.access`.
//!
//! This call uses a plain HTTP client, not the SSRF-guarded delivery `Sender`: its URL is the
//! operator's configuration (`SLACK_API_BASE_URL`, slack.com in production, a local fake Slack
//! in tests), never something a user typed, so there is nothing to guard against, and the
//! guard's refusal of loopback (Lambda allows no private networks) would only break the local
//! fake. What the answer gives us (the incoming-webhook URL) goes through the guard later, at
//! every delivery.

use std::error::Error as _;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use crate::domain::secret::SecretValue;

/// Total time for the exchange (connect, send, answer).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack's answers are a few hundred bytes; more is not an answer of Slack's.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const USER_AGENT: &str = concat!("automations/", env!("CARGO_PKG_VERSION"));

/// Slack ids (`T0123`, `C0456`) and error codes (`invalid_code`): they become parts of storage
/// keys and of pages, so anything else in their place is refused.
#[allow(clippy::expect_used)]
static SLACK_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_.-]{1,100}$").expect("the pattern compiles"));

/// How the exchange failed, in terms the connect flow answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Slack answered `ok: false` with this error code.
    #[error("Slack refused the code: {0}")]
    Refused(String),
    /// No answer: connection refused, timeout, TLS failure.
    #[error("Slack could not be reached: {0}")]
    Unreachable(String),
    /// An answer that is not Slack's documented one.
    #[error("Slack's answer was not understood: {0}")]
    BadAnswer(String),
}

/// What a successful exchange yields: the channel the user picked and its credentials.
#[derive(Clone)]
pub struct Installation {
    pub slack_team_id: String,
    pub slack_team_name: String,
    pub channel: String,
    pub channel_id: String,
    pub configuration_url: String,
    pub incoming_webhook_url: String,
    pub access_token: String,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation")
            .field("slack_team_id", &self.slack_team_id)
            .field("channel_id", &self.channel_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct AccessAnswer {
    ok: bool,
    error: Option<String>,
    access_token: Option<String>,
    team: Option<SlackTeam>,
    incoming_webhook: Option<IncomingWebhook>,
}

#[derive(Deserialize)]
struct SlackTeam {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct IncomingWebhook {
    channel: String,
    channel_id: String,
    #[serde(default)]
    configuration_url: String,
    url: String,
}

/// The form Slack's `oauth.v2.access` takes.
pub struct ExchangeRequest<'a> {
    pub api_base_url: &'a str,
    pub code: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a SecretValue,
    pub redirect_uri: &'a str,
}

/// Trades the code for the installation. Error texts never contain the client secret.
pub async fn exchange_code(req: &ExchangeRequest<'_>) -> Result<Installation, ExchangeError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(EXCHANGE_TIMEOUT)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| ExchangeError::Unreachable(describe(e)))?;
    let form = serde_urlencoded::to_string([
        ("code", req.code),
        ("client_id", req.client_id),
        ("client_secret", req.client_secret.expose()),
        ("redirect_uri", req.redirect_uri),
    ])
    .map_err(|e| ExchangeError::BadAnswer(format!("encoding the form: {e}")))?;
    let url = format!("{}/api/oauth.v2.access", req.api_base_url.trim_end_matches('/'));
    let mut response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .map_err(|e| ExchangeError::Unreachable(describe(e)))?;

    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| ExchangeError::Unreachable(describe(e)))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER_BYTES {
            return Err(ExchangeError::BadAnswer("the answer is too large".into()));
        }
    }
    if !status.is_success() {
        return Err(ExchangeError::BadAnswer(format!("HTTP {}", status.as_u16())));
    }
    parse_answer(&body)
}

fn parse_answer(body: &[u8]) -> Result<Installation, ExchangeError> {
    let answer: AccessAnswer =
        serde_json::from_slice(body).map_err(|_| ExchangeError::BadAnswer("the answer is not Slack's JSON".into()))?;
    if !answer.ok {
        let code = answer.error.unwrap_or_default();
        // Slack's codes are short identifiers; anything else is shown as unknown.
        let code = if SLACK_TOKEN.is_match(&code) { code } else { "unknown_error".to_owned() };
        return Err(ExchangeError::Refused(code));
    }
    let webhook = answer
        .incoming_webhook
        .ok_or_else(|| ExchangeError::BadAnswer("no incoming_webhook: is the app's scope incoming-webhook?".into()))?;
    let team = answer.team.ok_or_else(|| ExchangeError::BadAnswer("no team".into()))?;
    if !SLACK_TOKEN.is_match(&team.id) || !SLACK_TOKEN.is_match(&webhook.channel_id) {
        return Err(ExchangeError::BadAnswer("the team or channel id is not a Slack id".into()));
    }
    match url::Url::parse(&webhook.url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
        _ => return Err(ExchangeError::BadAnswer("the incoming webhook URL is not an http(s) URL".into())),
    }
    Ok(Installation {
        slack_team_id: team.id,
        slack_team_name: clip(&team.name, 200),
        channel: clip(&webhook.channel, 200),
        channel_id: webhook.channel_id,
        configuration_url: clip(&webhook.configuration_url, 2000),
        incoming_webhook_url: webhook.url,
        access_token: answer.access_token.unwrap_or_default(),
    })
}

/// Names shown in pages and lists; Slack's are short, a runaway one is cut.
fn clip(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// A transport error's chain, without the URL (the base URL is configuration, but the rule
/// is simpler to keep everywhere).
fn describe(e: reqwest::Error) -> String {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if timeout { format!("timed out after {} s: {message}", EXCHANGE_TIMEOUT.as_secs()) } else { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: serde_json::Value) -> Result<Installation, ExchangeError> {
        parse_answer(&serde_json::to_vec(&json).unwrap())
    }

    #[test]
    fn an_ok_answer_yields_the_channel_and_its_credentials() {
        let got = answer(serde_json::json!({
            "ok": true, "access_token": "xoxb-1", "token_type": "bot", "scope": "incoming-webhook",
            "team": {"id": "T1", "name": "Acme"},
            "incoming_webhook": {"channel": "#alerts", "channel_id": "C1",
                "configuration_url": "https://acme.slack.com/services/B1", "url": "https://hooks.slack.com/services/T1/B1/x"}
        }))
        .unwrap();
        assert_eq!(
            (got.slack_team_id.as_str(), got.channel.as_str(), got.channel_id.as_str()),
            ("T1", "#alerts", "C1")
        );
        assert_eq!(got.access_token, "xoxb-1");
        assert!(!format!("{got:?}").contains("hooks.slack.com"));
    }

    #[test]
    fn ok_false_carries_slacks_error_code() {
        assert_eq!(
            answer(serde_json::json!({"ok": false, "error": "invalid_code"})).unwrap_err(),
            ExchangeError::Refused("invalid_code".into())
        );
        assert_eq!(
            answer(serde_json::json!({"ok": false, "error": "<script>"})).unwrap_err(),
            ExchangeError::Refused("unknown_error".into())
        );
    }

    #[test]
    fn answers_without_a_webhook_or_with_odd_ids_are_not_understood() {
        assert!(matches!(
            answer(serde_json::json!({"ok": true, "team": {"id": "T1"}})),
            Err(ExchangeError::BadAnswer(_))
        ));
        assert!(matches!(
            answer(serde_json::json!({"ok": true, "team": {"id": "T#1"},
                "incoming_webhook": {"channel": "#a", "channel_id": "C1", "url": "https://h/x"}})),
            Err(ExchangeError::BadAnswer(_))
        ));
        assert!(matches!(parse_answer(b"<html>"), Err(ExchangeError::BadAnswer(_))));
    }
}
