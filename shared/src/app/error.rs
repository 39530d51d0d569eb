//! The one error enum of the use-case layer; `http` maps it to problem+json once.

use crate::domain::error::{FieldError, Invalid};
use crate::ports::error::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid bearer token.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller has a role here but not the one this needs.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing does not exist, or the caller has no role in its team.
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness rule or a reference in use stops the change.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Well-formed input that breaks a rule (422), each fault named by its path.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Input that cannot be read at all (400), e.g. an event batch with a bad element.
    #[error("bad request: {message}")]
    BadRequest { message: String, errors: Vec<FieldError> },
    /// The deployment lacks something the call needs (e.g. no Slack app registered).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A backend failed; shown as an opaque 500/503 and logged with its cause.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault of ours that must not happen (corrupt data, a broken invariant).
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound(what.into())
    }

    pub fn conflict(why: impl Into<String>) -> Self {
        AppError::Conflict(why.into())
    }

    pub fn forbidden(why: impl Into<String>) -> Self {
        AppError::Forbidden(why.into())
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid(Invalid::one(field, message))
    }

    /// Whether retrying the same work later may succeed (a queue consumer retries these).
    pub fn is_transient(&self) -> bool {
        match self {
            AppError::Store(e) => e.is_transient(),
            AppError::Unavailable(_) => true,
            _ => false,
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
