//! Automations (DESIGN §5, §8).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ListOut;
use super::common::{BodyErrors, ConflictError, ListErrors, PathOf, TeamErrors};
use super::extract::{Body, Caller, Paging, QueryParams};
use super::problem::ApiResult;
use crate::app::App;
use crate::app::automations::AutomationFilter;
use crate::app::preview::{PreviewIn, PreviewOut};
use crate::domain::automation::{Automation, AutomationSpecIn};
use crate::domain::names::{ObjectId, TeamName};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create_automation, list_automations))
        .routes(routes!(get_automation, replace_automation, patch_automation, delete_automation))
        .routes(routes!(preview_automation))
}

/// Dry run: would this event fire the automation, and what would be sent (secrets masked)?
/// Nothing is stored or sent, and no metric window moves.
#[utoipa::path(
    post, path = "/v1/teams/{team}/automations/{id}/preview", tag = "automations",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Automation id (`au_…`)")),
    request_body = PreviewIn,
    responses((status = 200, description = "Whether it matches, why not, and the request", body = PreviewOut), TeamErrors, BodyErrors)
)]
async fn preview_automation(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
    Body(input): Body<PreviewIn>,
) -> ApiResult<Json<PreviewOut>> {
    Ok(Json(app.preview_automation(&who, &team, &id, input).await?))
}

/// Create an automation (team admin, or registry admin for their registry's scopes).
#[utoipa::path(
    post, path = "/v1/teams/{team}/automations", tag = "automations",
    params(("team" = String, Path, description = "Team name")),
    request_body = AutomationSpecIn,
    responses((status = 201, description = "The automation", body = Automation), TeamErrors, BodyErrors, ConflictError)
)]
async fn create_automation(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf(team): PathOf<TeamName>,
    Body(input): Body<AutomationSpecIn>,
) -> ApiResult<(StatusCode, Json<Automation>)> {
    Ok((StatusCode::CREATED, Json(app.create_automation(&who, &team, input).await?)))
}

/// The team's automations, optionally only those that see one project's or registry's events.
#[utoipa::path(
    get, path = "/v1/teams/{team}/automations", tag = "automations",
    params(("team" = String, Path, description = "Team name"), AutomationFilter, Paging),
    responses((status = 200, description = "A page of automations", body = ListOut<Automation>), TeamErrors, ListErrors)
)]
async fn list_automations(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf(team): PathOf<TeamName>,
    QueryParams(filter): QueryParams<AutomationFilter>,
    QueryParams(paging): QueryParams<Paging>,
) -> ApiResult<Json<ListOut<Automation>>> {
    Ok(Json(app.list_automations(&who, &team, &filter, paging.limit()?, paging.cursor()).await?.into()))
}

/// One automation.
#[utoipa::path(
    get, path = "/v1/teams/{team}/automations/{id}", tag = "automations",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Automation id (`au_…`)")),
    responses((status = 200, description = "The automation", body = Automation), TeamErrors)
)]
async fn get_automation(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
) -> ApiResult<Json<Automation>> {
    Ok(Json(app.get_automation(&who, &team, &id).await?))
}

/// Replace an automation's spec; `id`, `created_*` and `updated_at` in the body are ignored.
#[utoipa::path(
    put, path = "/v1/teams/{team}/automations/{id}", tag = "automations",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Automation id (`au_…`)")),
    request_body = AutomationSpecIn,
    responses((status = 200, description = "The automation", body = Automation), TeamErrors, BodyErrors, ConflictError)
)]
async fn replace_automation(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
    Body(input): Body<AutomationSpecIn>,
) -> ApiResult<Json<Automation>> {
    Ok(Json(app.replace_automation(&who, &team, &id, input).await?))
}

/// Change an automation with a JSON Merge Patch (RFC 7396); `{"enabled": false}` pauses it.
#[utoipa::path(
    patch, path = "/v1/teams/{team}/automations/{id}", tag = "automations",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Automation id (`au_…`)")),
    request_body(content = AutomationSpecIn, content_type = "application/merge-patch+json", description = "Any subset of the spec; `application/json` is accepted too"),
    responses((status = 200, description = "The automation", body = Automation), TeamErrors, BodyErrors, ConflictError)
)]
async fn patch_automation(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
    Body(patch): Body<Value>,
) -> ApiResult<Json<Automation>> {
    Ok(Json(app.patch_automation(&who, &team, &id, patch).await?))
}

/// Delete an automation.
#[utoipa::path(
    delete, path = "/v1/teams/{team}/automations/{id}", tag = "automations",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Automation id (`au_…`)")),
    responses((status = 204, description = "Deleted"), TeamErrors)
)]
async fn delete_automation(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
) -> ApiResult<StatusCode> {
    app.delete_automation(&who, &team, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
