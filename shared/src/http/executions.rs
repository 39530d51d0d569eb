//! Delivery history: executions of an automation, one execution with its attempts, redeliver.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ListOut;
use super::extract::{Caller, Paging, QueryParams};
use super::problem::{ApiError, ApiResult, Problem};
use crate::app::App;
use crate::app::error::AppError;
use crate::app::history::{ExecutionSummary, Redelivery};
use crate::domain::execution::Execution;
use crate::domain::names::{ObjectId, TeamName};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(list_executions)).routes(routes!(get_execution)).routes(routes!(redeliver))
}

/// Path parts that cannot name anything are a 404, like names that name nothing.
fn team_and_id(team: String, id: String, what: &str) -> Result<(TeamName, ObjectId), ApiError> {
    let team = TeamName::parse(team).map_err(|_| AppError::not_found("team"))?;
    let id = ObjectId::parse(id).map_err(|_| AppError::not_found(what.to_owned()))?;
    Ok((team, id))
}

/// An automation's executions, newest first.
#[utoipa::path(
    get,
    path = "/v1/teams/{team}/automations/{id}/executions",
    tag = "executions",
    params(
        ("team" = String, Path, description = "Team name"),
        ("id" = String, Path, description = "Automation id"),
        Paging
    ),
    responses(
        (status = 200, description = "A page of executions, newest first", body = ListOut<ExecutionSummary>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A producer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such team or automation", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_executions(
    State(app): State<App>,
    Caller(who): Caller,
    Path((team, id)): Path<(String, String)>,
    QueryParams(paging): QueryParams<Paging>,
) -> ApiResult<Json<ListOut<ExecutionSummary>>> {
    let (team, id) = team_and_id(team, id, "automation")?;
    let limit = paging.limit()?;
    let page = app.automation_executions(&who, &team, &id, limit, paging.cursor()).await?;
    Ok(Json(page.into()))
}

/// One execution with every attempt; secret values in `request` are shown as `***`.
#[utoipa::path(
    get,
    path = "/v1/teams/{team}/executions/{id}",
    tag = "executions",
    params(
        ("team" = String, Path, description = "Team name"),
        ("id" = String, Path, description = "Execution id")
    ),
    responses(
        (status = 200, description = "The execution and its attempts", body = Execution),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A producer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such team or execution", body = Problem, content_type = "application/problem+json")
    )
)]
async fn get_execution(
    State(app): State<App>,
    Caller(who): Caller,
    Path((team, id)): Path<(String, String)>,
) -> ApiResult<Json<Execution>> {
    let (team, id) = team_and_id(team, id, "execution")?;
    Ok(Json(app.execution_detail(&who, &team, &id).await?))
}

/// Sends the execution again as a new attempt with the same `webhook-id`, rendered with the
/// automation's current action and secrets. Its result sets the status; it is not retried.
#[utoipa::path(
    post,
    path = "/v1/teams/{team}/executions/{id}/redeliver",
    tag = "executions",
    params(
        ("team" = String, Path, description = "Team name"),
        ("id" = String, Path, description = "Execution id")
    ),
    responses(
        (status = 202, description = "The attempt is queued", body = Redelivery),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a team admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such team or execution", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Still being delivered, or the automation is gone or sends nothing", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The queue is unavailable", body = Problem, content_type = "application/problem+json")
    )
)]
async fn redeliver(
    State(app): State<App>,
    Caller(who): Caller,
    Path((team, id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Redelivery>)> {
    let (team, id) = team_and_id(team, id, "execution")?;
    let queued = app.redeliver_execution(&who, &team, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_history_routes_are_in_the_openapi_document() {
        let doc = crate::http::openapi();
        for path in [
            "/v1/teams/{team}/automations/{id}/executions",
            "/v1/teams/{team}/executions/{id}",
            "/v1/teams/{team}/executions/{id}/redeliver",
        ] {
            assert!(doc.paths.paths.contains_key(path), "{path} is not documented");
        }
    }
}
