//! Slack integrations (DESIGN §8): created by the OAuth flow, listed and removed here.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ListOut;
use super::common::{ConflictError, ListErrors, PathOf, TeamErrors};
use super::extract::{Caller, Paging, QueryParams};
use super::problem::ApiResult;
use crate::app::App;
use crate::domain::names::{ObjectId, TeamName};
use crate::domain::slack::SlackIntegration;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_slack_integrations))
        .routes(routes!(get_slack_integration, delete_slack_integration))
}

/// The team's connected Slack channels.
#[utoipa::path(
    get, path = "/v1/teams/{team}/slack-integrations", tag = "slack-integrations",
    params(("team" = String, Path, description = "Team name"), Paging),
    responses((status = 200, description = "A page of Slack integrations", body = ListOut<SlackIntegration>), TeamErrors, ListErrors)
)]
async fn list_slack_integrations(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf(team): PathOf<TeamName>,
    QueryParams(paging): QueryParams<Paging>,
) -> ApiResult<Json<ListOut<SlackIntegration>>> {
    Ok(Json(app.list_slack_integrations(&who, &team, paging.limit()?, paging.cursor()).await?.into()))
}

/// One Slack integration.
#[utoipa::path(
    get, path = "/v1/teams/{team}/slack-integrations/{id}", tag = "slack-integrations",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Integration id (`si_…`)")),
    responses((status = 200, description = "The integration", body = SlackIntegration), TeamErrors)
)]
async fn get_slack_integration(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
) -> ApiResult<Json<SlackIntegration>> {
    Ok(Json(app.get_slack_integration(&who, &team, &id).await?))
}

/// Remove a Slack integration no automation uses (team admin); its URL and token are deleted.
#[utoipa::path(
    delete, path = "/v1/teams/{team}/slack-integrations/{id}", tag = "slack-integrations",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Integration id (`si_…`)")),
    responses((status = 204, description = "Removed"), TeamErrors, ConflictError)
)]
async fn delete_slack_integration(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
) -> ApiResult<StatusCode> {
    app.delete_slack_integration(&who, &team, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
