//! Pieces the config API's resource routers share: path parameters with problem+json errors,
//! and the documented error answers.

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::{ApiError, Problem};

/// Path parameters parsed into validated names and ids. A segment that is not a valid name or
/// id cannot name anything that exists, so it is a problem+json 404 (axum's own rejection would
/// be a plain-text 400).
pub struct PathOf<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathOf(value)),
            Err(e) => {
                Err(ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("not found: {}", e.body_text()), vec![]))
            }
        }
    }
}

/// Errors of every route under `/v1/teams/{team}`.
#[derive(utoipa::IntoResponses)]
pub enum TeamErrors {
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The caller has a role in the team, but not one that allows this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The team or the object does not exist, or the caller has no role in the team.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// Errors of routes only the system admin may call.
#[derive(utoipa::IntoResponses)]
pub enum SystemErrors {
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The token is not the system admin's.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// Errors of routes that read a JSON body.
#[derive(utoipa::IntoResponses)]
pub enum BodyErrors {
    /// Unparsable JSON or an unknown field.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The body is larger than 256 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not JSON.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Well-formed but invalid: each fault in `errors`, by its JSON path.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// Errors of list routes (`?limit=&cursor=`).
#[derive(utoipa::IntoResponses)]
pub enum ListErrors {
    /// A query parameter cannot be read.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// `limit` out of 1..=100, a cursor not issued for this list, or an invalid filter.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// A name is taken, or the object is still in use.
#[derive(utoipa::IntoResponses)]
pub enum ConflictError {
    /// The name is taken, the object is in use, or it changed meanwhile.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
}
