//! RFC 9457 problem+json: every error answer of the API, mapped from `AppError` in one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::error::AppError;
use crate::domain::error::FieldError;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` style tags under this service).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Each invalid field, by its JSON path in the request body.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

/// An error answer: status + problem.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub problem: Problem,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        Self {
            status,
            problem: Problem {
                kind: format!("https://automations.dev/problems/{kind}"),
                title,
                status: status.as_u16(),
                detail: detail.into(),
                errors,
            },
        }
    }

    pub fn bad_request(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail, errors)
    }

    pub fn unprocessable(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail, errors)
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Unauthenticated => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "a valid bearer token is required", vec![])
            }
            AppError::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", why, vec![]),
            AppError::NotFound(what) => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("{what} not found"), vec![])
            }
            AppError::Conflict(why) => ApiError::new(StatusCode::CONFLICT, "conflict", why, vec![]),
            AppError::Invalid(invalid) => {
                let detail = match invalid.0.as_slice() {
                    [one] if one.field.is_empty() => one.message.clone(),
                    [one] => format!("{}: {}", one.field, one.message),
                    many => format!("{} fields are invalid", many.len()),
                };
                ApiError::unprocessable(detail, invalid.0)
            }
            AppError::BadRequest { message, errors } => ApiError::bad_request(message, errors),
            AppError::Unavailable(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", why, vec![]),
            AppError::Store(e) if e.is_transient() => {
                tracing::error!(error = %e, "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is unavailable; retry later",
                    vec![],
                )
            }
            other => {
                // The cause goes to the log only: a 500 says nothing about our insides.
                tracing::error!(error = %other, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error", vec![])
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
