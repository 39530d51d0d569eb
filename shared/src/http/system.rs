//! Users, teams and members (DESIGN §8): the system admin's routes and team membership.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ListOut;
use super::common::{BodyErrors, ConflictError, ListErrors, PathOf, SystemErrors, TeamErrors};
use super::extract::{Body, Caller, Paging, QueryParams};
use super::problem::ApiResult;
use crate::app::App;
use crate::app::admin::{MemberIn, TeamIn, UserCreated, UserIn};
use crate::domain::names::{TeamName, UserName};
use crate::domain::team::{Member, Team};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create_user))
        .routes(routes!(create_team))
        .routes(routes!(list_members))
        .routes(routes!(put_member, delete_member))
}

/// Create a user and their API token (shown once).
#[utoipa::path(
    post, path = "/v1/users", tag = "system",
    request_body = UserIn,
    responses(
        (status = 201, description = "The user and their token: store it now, it is never shown again", body = UserCreated),
        SystemErrors, BodyErrors, ConflictError,
    )
)]
async fn create_user(
    State(app): State<App>,
    Caller(who): Caller,
    Body(input): Body<UserIn>,
) -> ApiResult<(StatusCode, Json<UserCreated>)> {
    Ok((StatusCode::CREATED, Json(app.create_user(&who, input).await?)))
}

/// Create a team.
#[utoipa::path(
    post, path = "/v1/teams", tag = "system",
    request_body = TeamIn,
    responses((status = 201, description = "The team", body = Team), SystemErrors, BodyErrors, ConflictError)
)]
async fn create_team(
    State(app): State<App>,
    Caller(who): Caller,
    Body(input): Body<TeamIn>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    Ok((StatusCode::CREATED, Json(app.create_team(&who, input).await?)))
}

/// The team's members and their roles.
#[utoipa::path(
    get, path = "/v1/teams/{team}/members", tag = "system",
    params(("team" = String, Path, description = "Team name"), Paging),
    responses((status = 200, description = "A page of members", body = ListOut<Member>), TeamErrors, ListErrors)
)]
async fn list_members(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf(team): PathOf<TeamName>,
    QueryParams(paging): QueryParams<Paging>,
) -> ApiResult<Json<ListOut<Member>>> {
    Ok(Json(app.list_members(&who, &team, paging.limit()?, paging.cursor()).await?.into()))
}

/// Grant a user a role in the team, or change it (system admin or team admin).
#[utoipa::path(
    put, path = "/v1/teams/{team}/members/{user}", tag = "system",
    params(("team" = String, Path, description = "Team name"), ("user" = String, Path, description = "User name")),
    request_body = MemberIn,
    responses((status = 200, description = "The membership", body = Member), TeamErrors, BodyErrors)
)]
async fn put_member(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, user)): PathOf<(TeamName, UserName)>,
    Body(input): Body<MemberIn>,
) -> ApiResult<Json<Member>> {
    Ok(Json(app.put_member(&who, &team, &user, input).await?))
}

/// Remove a user from the team.
#[utoipa::path(
    delete, path = "/v1/teams/{team}/members/{user}", tag = "system",
    params(("team" = String, Path, description = "Team name"), ("user" = String, Path, description = "User name")),
    responses((status = 204, description = "Removed"), TeamErrors)
)]
async fn delete_member(
    State(app): State<App>,
    Caller(who): Caller,
    PathOf((team, user)): PathOf<(TeamName, UserName)>,
) -> ApiResult<StatusCode> {
    app.remove_member(&who, &team, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
