//! Team secrets (DESIGN §8): values go in, only metadata comes out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ListOut;
use super::common::{BodyErrors, ConflictError, ListErrors, PathOf, TeamErrors};
use super::extract::{Body, Caller, Paging, QueryParams};
use super::problem::ApiResult;
use crate::app::App;
use crate::app::secrets::{SecretIn, SecretValueIn};
use crate::domain::names::{SecretName, TeamName};
use crate::domain::secret::SecretMeta;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(create_secret, list_secrets)).routes(routes!(rotate_secret, delete_secret))
}

/// Store a secret (team admin). Its value is never shown again.
#[utoipa::path(
    post, path = "/v1/teams/{team}/secrets", tag = "secrets",
    params(("team" = String, Path, description = "Team name")),
    request_body = SecretIn,
    responses((status = 201, description = "The secret's metadata", body = SecretMeta), TeamErrors, BodyErrors, ConflictError)
)]
async fn create_secret(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf(team): PathOf<TeamName>,
    Body(input): Body<SecretIn>,
) -> ApiResult<(StatusCode, Json<SecretMeta>)> {
    Ok((StatusCode::CREATED, Json(app.create_secret(&who, &team, input).await?)))
}

/// The team's secrets: names and times, never values.
#[utoipa::path(
    get, path = "/v1/teams/{team}/secrets", tag = "secrets",
    params(("team" = String, Path, description = "Team name"), Paging),
    responses((status = 200, description = "A page of secret metadata", body = ListOut<SecretMeta>), TeamErrors, ListErrors)
)]
async fn list_secrets(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf(team): PathOf<TeamName>,
    QueryParams(paging): QueryParams<Paging>,
) -> ApiResult<Json<ListOut<SecretMeta>>> {
    Ok(Json(app.list_secrets(&who, &team, paging.limit()?, paging.cursor()).await?.into()))
}

/// Rotate a secret's value (team admin).
#[utoipa::path(
    put, path = "/v1/teams/{team}/secrets/{name}", tag = "secrets",
    params(("team" = String, Path, description = "Team name"), ("name" = String, Path, description = "Secret name")),
    request_body = SecretValueIn,
    responses((status = 200, description = "The secret's metadata, `updated_at` moved", body = SecretMeta), TeamErrors, BodyErrors)
)]
async fn rotate_secret(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, name)): PathOf<(TeamName, SecretName)>,
    Body(input): Body<SecretValueIn>,
) -> ApiResult<Json<SecretMeta>> {
    Ok(Json(app.rotate_secret(&who, &team, &name, input).await?))
}

/// Delete a secret no webhook uses (team admin).
#[utoipa::path(
    delete, path = "/v1/teams/{team}/secrets/{name}", tag = "secrets",
    params(("team" = String, Path, description = "Team name"), ("name" = String, Path, description = "Secret name")),
    responses((status = 204, description = "Deleted"), TeamErrors, ConflictError)
)]
async fn delete_secret(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, name)): PathOf<(TeamName, SecretName)>,
) -> ApiResult<StatusCode> {
    app.delete_secret(&who, &team, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
