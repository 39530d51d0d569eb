//! The Slack app registration (`/v1/admin/slack-app`) and a team's install link
//! (`/v1/teams/{team}/slack-integrations/install`), DESIGN §8–§9.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Caller};
use super::problem::{ApiResult, Problem};
use crate::app::App;
use crate::app::error::AppError;
use crate::domain::names::TeamName;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(put_slack_app, get_slack_app)).routes(routes!(create_install_link))
}

/// The Slack app's credentials, from its "Basic Information" page.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackAppIn {
    pub client_id: String,
    /// Stored in the secret store; never returned.
    pub client_secret: String,
}

/// What is registered; the client secret is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlackAppOut {
    pub client_id: Option<String>,
    pub configured: bool,
    /// Enter this as the Slack app's OAuth redirect URL.
    pub redirect_url: String,
}

/// A single-use link that starts connecting a Slack channel (valid 10 minutes).
#[derive(Debug, Serialize, ToSchema)]
pub struct InstallLinkOut {
    pub url: String,
}

/// Registers or replaces the Slack app (system admin).
#[utoipa::path(
    put,
    path = "/v1/admin/slack-app",
    tag = "slack",
    request_body = SlackAppIn,
    responses(
        (status = 204, description = "Registered"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn put_slack_app(
    State(app): State<App>,
    Caller(who): Caller,
    Body(body): Body<SlackAppIn>,
) -> ApiResult<StatusCode> {
    app.register_slack_app(&who, &body.client_id, &body.client_secret).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The registered Slack app and the redirect URL to give Slack (system admin).
#[utoipa::path(
    get,
    path = "/v1/admin/slack-app",
    tag = "slack",
    responses(
        (status = 200, body = SlackAppOut),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn get_slack_app(State(app): State<App>, Caller(who): Caller) -> ApiResult<Json<SlackAppOut>> {
    let status = app.slack_app_status(&who).await?;
    Ok(Json(SlackAppOut {
        client_id: status.client_id,
        configured: status.configured,
        redirect_url: status.redirect_url,
    }))
}

/// A single-use install link for the team (team admin). Open it in a browser to pick a
/// Slack channel; 503 while no Slack app is registered.
#[utoipa::path(
    post,
    path = "/v1/teams/{team}/slack-integrations/install",
    tag = "slack",
    params(("team" = String, Path, description = "Team name")),
    responses(
        (status = 200, body = InstallLinkOut),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(team = %team))]
async fn create_install_link(
    State(app): State<App>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> ApiResult<Json<InstallLinkOut>> {
    // A name that cannot exist is a team that does not exist.
    let team = TeamName::parse(team.as_str()).map_err(|_| AppError::not_found(format!("team {team}")))?;
    let url = app.create_slack_install_link(&who, &team).await?;
    Ok(Json(InstallLinkOut { url }))
}
