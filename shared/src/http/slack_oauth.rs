//! The browser's side of connecting a Slack channel (DESIGN §9): `GET /slack/install` and
//! `GET /slack/oauth/callback`. A person reads these answers, so they are small HTML pages
//! (every interpolated value escaped), not problem+json.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::app::App;
use crate::app::error::AppError;
use crate::app::slack_oauth::exchange::ExchangeError;
use crate::app::slack_oauth::{COOKIE_PATH, CallbackParams, ConnectError, Connected, NONCE_COOKIE};

pub fn routes() -> Router<App> {
    Router::new().route("/slack/install", get(install)).route("/slack/oauth/callback", get(callback))
}

#[derive(Debug, Default, Deserialize)]
struct InstallParams {
    ticket: Option<String>,
}

/// Spends the install ticket, sets the flow cookie and sends the browser to Slack.
#[tracing::instrument(skip_all)]
async fn install(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    let Ok(params) = serde_urlencoded::from_str::<InstallParams>(query.as_deref().unwrap_or("")) else {
        return failure_page(&ConnectError::MissingTicket);
    };
    match app.start_slack_install(params.ticket.as_deref()).await {
        Ok(redirect) => {
            let cookie = cookie(&app, &redirect.nonce, redirect.max_age_seconds);
            let mut response = StatusCode::FOUND.into_response();
            let headers = response.headers_mut();
            match HeaderValue::try_from(redirect.authorize_url) {
                Ok(location) => headers.insert(header::LOCATION, location),
                Err(_) => return failure_page(&ConnectError::App(AppError::Internal("unusable Slack URL".into()))),
            };
            if let Ok(cookie) = HeaderValue::try_from(cookie) {
                headers.insert(header::SET_COOKIE, cookie);
            }
            no_store(headers);
            response
        }
        Err(e) => failure_page(&e),
    }
}

/// Where Slack sends the browser back: finishes the flow and says what happened.
#[tracing::instrument(skip_all)]
async fn callback(State(app): State<App>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let params = serde_urlencoded::from_str::<CallbackParams>(query.as_deref().unwrap_or("")).unwrap_or_default();
    let nonce = cookie_value(&headers, NONCE_COOKIE);
    let mut response = match app.finish_slack_install(&params, nonce.as_deref()).await {
        Ok(connected) => success(&app, &connected),
        Err(e) => failure_page(&e),
    };
    // The flow is over either way: its cookie has nothing left to prove.
    if let Ok(clear) = HeaderValue::try_from(cookie(&app, "", 0)) {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
    response
}

fn success(app: &App, connected: &Connected) -> Response {
    let integration = &connected.integration;
    if let Some(target) = app.config.slack_success_redirect.as_deref()
        && let Ok(mut url) = url::Url::parse(target)
    {
        // The UI learns which team and integration to show.
        url.query_pairs_mut()
            .append_pair("team", connected.team.as_str())
            .append_pair("integration_id", integration.id.as_str());
        if let Ok(location) = HeaderValue::try_from(String::from(url)) {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            no_store(response.headers_mut());
            return response;
        }
    }
    let channel = channel_label(&integration.channel);
    let title = format!("Connected {channel} to {}", connected.team);
    let body = format!(
        "<p>Automations of team <strong>{team}</strong> can now post to <strong>{channel}</strong> \
         in the Slack workspace <strong>{workspace}</strong>.</p>\
         <p>Integration id: <code>{id}</code>. Use it as <code>integration_id</code> in a Slack action.</p>\
         <p>You can close this window.</p>",
        team = escape(connected.team.as_str()),
        channel = escape(&channel),
        workspace = escape(&integration.slack_team_name),
        id = escape(integration.id.as_str()),
    );
    page(StatusCode::OK, &title, &body)
}

/// Slack gives channel names with their `#`; a name without one gets it for display.
fn channel_label(channel: &str) -> String {
    if channel.starts_with('#') || channel.starts_with('@') { channel.to_owned() } else { format!("#{channel}") }
}

const START_AGAIN: &str = "Ask a team admin for a new install link (<code>POST /v1/teams/{team}/slack-integrations/install</code>) and open it in this browser.";

/// The answer for each way the flow can stop. Nothing was stored in any of them.
fn failure_page(e: &ConnectError) -> Response {
    let (status, title, detail): (StatusCode, &str, String) = match e {
        ConnectError::MissingTicket => {
            (StatusCode::BAD_REQUEST, "This install link is incomplete", START_AGAIN.to_owned())
        }
        ConnectError::InvalidTicket => (
            StatusCode::BAD_REQUEST,
            "This install link is invalid, expired or already used",
            format!("An install link works once, within 10 minutes. {START_AGAIN}"),
        ),
        ConnectError::AccessDenied => (
            StatusCode::FORBIDDEN,
            "Slack connection cancelled",
            "The app was not allowed to post to a channel, so nothing was connected.".to_owned(),
        ),
        ConnectError::AuthorizeFailed(code) => (
            StatusCode::BAD_REQUEST,
            "Slack did not authorize the app",
            format!("Slack answered <code>{}</code>. {START_AGAIN}", escape(code)),
        ),
        ConnectError::MissingState | ConnectError::InvalidState => (
            StatusCode::BAD_REQUEST,
            "This Slack answer cannot be verified",
            format!("It does not carry a state issued by this service. {START_AGAIN}"),
        ),
        ConnectError::ExpiredState => (
            StatusCode::BAD_REQUEST,
            "This Slack connection attempt expired",
            format!("The trip through Slack must finish within 10 minutes. {START_AGAIN}"),
        ),
        ConnectError::ReplayedState => (
            StatusCode::BAD_REQUEST,
            "This Slack answer was already used",
            format!("Each connection attempt completes once. {START_AGAIN}"),
        ),
        ConnectError::MissingCookie | ConnectError::CookieMismatch => (
            StatusCode::BAD_REQUEST,
            "This browser did not start this connection",
            format!(
                "The Slack answer must come back to the browser that opened the install link (with cookies enabled). {START_AGAIN}"
            ),
        ),
        ConnectError::MissingCode => (
            StatusCode::BAD_REQUEST,
            "Slack's answer has no authorization code",
            format!("Nothing was connected. {START_AGAIN}"),
        ),
        ConnectError::NotAllowed(why) => (
            StatusCode::FORBIDDEN,
            "Not allowed to connect a channel",
            format!("{}. Only team admins connect Slack channels.", escape(why)),
        ),
        ConnectError::NotRegistered => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Slack is not set up on this service",
            "No Slack app is registered yet. The system admin registers one with <code>PUT /v1/admin/slack-app</code>."
                .to_owned(),
        ),
        ConnectError::Slack(ExchangeError::Refused(code)) => (
            StatusCode::BAD_GATEWAY,
            "Slack refused to connect the channel",
            format!("Slack answered <code>{}</code>. {START_AGAIN}", escape(code)),
        ),
        ConnectError::Slack(ExchangeError::Unreachable(why)) => {
            tracing::warn!(error = %why, "Slack could not be reached for the code exchange");
            (
                StatusCode::BAD_GATEWAY,
                "Slack could not be reached",
                format!("Nothing was connected; try again in a moment. {START_AGAIN}"),
            )
        }
        ConnectError::Slack(ExchangeError::BadAnswer(why)) => {
            tracing::warn!(error = %why, "Slack's code exchange answer was not understood");
            (
                StatusCode::BAD_GATEWAY,
                "Slack's answer was not understood",
                format!("{}. Nothing was connected.", escape(why)),
            )
        }
        ConnectError::App(AppError::Conflict(_)) => (
            StatusCode::CONFLICT,
            "This channel was being connected at the same time",
            "Another connection of the same channel finished first; check the team's Slack integrations.".to_owned(),
        ),
        ConnectError::App(AppError::Store(e)) if e.is_transient() => {
            tracing::error!(error = %e, "storage unavailable during the Slack connect flow");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage is unavailable",
                format!("Nothing was connected; try again in a moment. {START_AGAIN}"),
            )
        }
        ConnectError::App(other) => {
            // The cause goes to the log only.
            tracing::error!(error = %other, "internal error in the Slack connect flow");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Nothing was connected.".to_owned())
        }
    };
    if status.is_client_error() {
        tracing::info!(status = status.as_u16(), reason = %e, "Slack connect flow stopped");
    }
    page(status, title, &format!("<p>{detail}</p>"))
}

/// The flow cookie: the nonce binds the callback to this browser. Lax, so it comes along on
/// the top-level navigation back from slack.com; scoped to `/slack`, unreadable by scripts.
fn cookie(app: &App, value: &str, max_age: i64) -> String {
    let secure = if app.config.insecure_cookies { "" } else { "; Secure" };
    format!("{NONCE_COOKIE}={value}; Max-Age={max_age}; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax{secure}")
}

/// The value of cookie `name` across every `Cookie` header.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// These answers carry one-time links and codes: no caching, no referrer to other sites.
fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// A small self-contained page; `title` is text, `body_html` is already escaped HTML.
fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let title = escape(title);
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}\
         code{{background:#f3f3f3;padding:0 .2rem}}</style></head>\
         <body><h1>{title}</h1>{body_html}</body></html>\n"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    no_store(headers);
    response
}

/// HTML-escapes text for element content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(escape(r#"<b a="1">'&'</b>"#), "&lt;b a=&quot;1&quot;&gt;&#x27;&amp;&#x27;&lt;/b&gt;");
    }

    #[test]
    fn the_flow_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; automations_slack_oauth=xyz"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie_value(&headers, NONCE_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie_value(&headers, "missing"), None);
    }

    #[test]
    fn channel_labels_carry_one_hash() {
        assert_eq!(channel_label("#alerts"), "#alerts");
        assert_eq!(channel_label("alerts"), "#alerts");
    }
}
