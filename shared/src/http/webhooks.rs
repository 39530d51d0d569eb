//! Webhooks (DESIGN §8): CRUD, signing secrets and the test request.

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
use crate::app::webhooks::{SigningSecretOut, WebhookCreated, WebhookIn, WebhookTestIn, WebhookTestOut};
use crate::domain::names::{ObjectId, TeamName};
use crate::domain::webhook::Webhook;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, patch_webhook, delete_webhook))
        .routes(routes!(test_webhook))
        .routes(routes!(rotate_signing_secret))
        .routes(routes!(get_signing_secret))
}

/// Create a webhook (team admin). The answer carries its signing secret.
#[utoipa::path(
    post, path = "/v1/teams/{team}/webhooks", tag = "webhooks",
    params(("team" = String, Path, description = "Team name")),
    request_body = WebhookIn,
    responses((status = 201, description = "The webhook and its signing secret", body = WebhookCreated), TeamErrors, BodyErrors, ConflictError)
)]
async fn create_webhook(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf(team): PathOf<TeamName>,
    Body(input): Body<WebhookIn>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    Ok((StatusCode::CREATED, Json(app.create_webhook(&who, &team, input).await?)))
}

/// The team's webhooks.
#[utoipa::path(
    get, path = "/v1/teams/{team}/webhooks", tag = "webhooks",
    params(("team" = String, Path, description = "Team name"), Paging),
    responses((status = 200, description = "A page of webhooks", body = ListOut<Webhook>), TeamErrors, ListErrors)
)]
async fn list_webhooks(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf(team): PathOf<TeamName>,
    QueryParams(paging): QueryParams<Paging>,
) -> ApiResult<Json<ListOut<Webhook>>> {
    Ok(Json(app.list_webhooks(&who, &team, paging.limit()?, paging.cursor()).await?.into()))
}

/// One webhook.
#[utoipa::path(
    get, path = "/v1/teams/{team}/webhooks/{id}", tag = "webhooks",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Webhook id (`wh_…`)")),
    responses((status = 200, description = "The webhook", body = Webhook), TeamErrors)
)]
async fn get_webhook(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(app.get_webhook(&who, &team, &id).await?))
}

/// Change a webhook with a JSON Merge Patch (RFC 7396) of `{name, url, access_token_secret,
/// secret}`; `null` clears an optional secret (team admin).
#[utoipa::path(
    patch, path = "/v1/teams/{team}/webhooks/{id}", tag = "webhooks",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Webhook id (`wh_…`)")),
    request_body(content = WebhookIn, content_type = "application/merge-patch+json", description = "Any subset of the fields; `application/json` is accepted too"),
    responses((status = 200, description = "The changed webhook", body = Webhook), TeamErrors, BodyErrors, ConflictError)
)]
async fn patch_webhook(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
    Body(patch): Body<Value>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(app.patch_webhook(&who, &team, &id, patch).await?))
}

/// Delete a webhook no automation uses (team admin).
#[utoipa::path(
    delete, path = "/v1/teams/{team}/webhooks/{id}", tag = "webhooks",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Webhook id (`wh_…`)")),
    responses((status = 204, description = "Deleted"), TeamErrors, ConflictError)
)]
async fn delete_webhook(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
) -> ApiResult<StatusCode> {
    app.delete_webhook(&who, &team, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a signed test request to the webhook and report the answer (team admin). With a
/// `payload`, it is rendered against a sample ADD_ARTIFACT_ALIAS event.
#[utoipa::path(
    post, path = "/v1/teams/{team}/webhooks/{id}/test", tag = "webhooks",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Webhook id (`wh_…`)")),
    request_body(content = WebhookTestIn, description = "Optional"),
    responses((status = 200, description = "What the receiver answered (a failed request is `ok: false`, not an error)", body = WebhookTestOut), TeamErrors, BodyErrors, ConflictError)
)]
async fn test_webhook(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
    Body(input): Body<Option<WebhookTestIn>>,
) -> ApiResult<Json<WebhookTestOut>> {
    Ok(Json(app.test_webhook(&who, &team, &id, input.unwrap_or_default()).await?))
}

/// Replace the webhook's Standard Webhooks signing secret at once (team admin).
#[utoipa::path(
    post, path = "/v1/teams/{team}/webhooks/{id}/rotate-signing-secret", tag = "webhooks",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Webhook id (`wh_…`)")),
    responses((status = 200, description = "The new signing secret", body = SigningSecretOut), TeamErrors)
)]
async fn rotate_signing_secret(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
) -> ApiResult<Json<SigningSecretOut>> {
    Ok(Json(app.rotate_signing_secret(&who, &team, &id).await?))
}

/// The webhook's current signing secret (team admin).
#[utoipa::path(
    get, path = "/v1/teams/{team}/webhooks/{id}/signing-secret", tag = "webhooks",
    params(("team" = String, Path, description = "Team name"), ("id" = String, Path, description = "Webhook id (`wh_…`)")),
    responses((status = 200, description = "The signing secret", body = SigningSecretOut), TeamErrors)
)]
async fn get_signing_secret(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, id)): PathOf<(TeamName, ObjectId)>,
) -> ApiResult<Json<SigningSecretOut>> {
    Ok(Json(app.signing_secret(&who, &team, &id).await?))
}
