//! Extractors shared by every route: the caller, a JSON body with precise errors, paging.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use crate::app::App;
use crate::app::error::AppError;
use crate::domain::error::FieldError;
use crate::domain::team::Principal;

/// The largest request body accepted (DESIGN §8).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The authenticated caller (`Authorization: Bearer <token>`).
pub struct Caller(pub Principal);

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or(AppError::Unauthenticated)?;
        Ok(Caller(app.authenticate(token).await?))
    }
}

/// Turns a serde error into the API's answer: unknown fields and bad syntax are 400, wrong
/// types and values 422 (DESIGN §8), each naming the JSON path.
pub fn json_error(e: serde_path_to_error::Error<serde_json::Error>, prefix: &str) -> ApiError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let path = crate::domain::error::join_path(prefix, &path);
    let inner = e.into_inner();
    let message = inner.to_string();
    // serde_json appends " at line L column C"; the path says where, more usefully.
    let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
    let field_error = FieldError::new(path.clone(), message.clone());
    let detail = if path.is_empty() { message.clone() } else { format!("{path}: {message}") };
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            ApiError::bad_request(format!("the body is not valid JSON: {message}"), vec![field_error])
        }
        serde_json::error::Category::Data if message.starts_with("unknown field") => {
            ApiError::bad_request(detail, vec![field_error])
        }
        serde_json::error::Category::Data => ApiError::unprocessable(detail, vec![field_error]),
    }
}

/// Reads the body as bytes, refusing more than 256 KiB (413) and non-JSON content types (415).
pub async fn body_bytes(req: Request) -> Result<Bytes, ApiError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.is_empty() && !content_type.starts_with("application/json") && !content_type.contains("+json") {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "request bodies must be application/json",
            vec![],
        ));
    }
    Bytes::from_request(req, &()).await.map_err(|e: BytesRejection| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "the body is larger than 256 KiB",
                vec![],
            )
        } else {
            ApiError::bad_request(format!("the body could not be read: {e}"), vec![])
        }
    })
}

/// A JSON body of type `T`, with DESIGN §8's error rules.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req).await?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"null" } else { &bytes };
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(de).map_err(|e| json_error(e, ""))?;
        Ok(Body(value))
    }
}

/// `?limit=&cursor=` (limit 1..=100, default 50).
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// 1..=100, default 50.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Paging {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=100) => Ok(n as usize),
            Some(_) => Err(ApiError::unprocessable(
                "limit: must be 1..=100",
                vec![FieldError::new("limit", "must be 1..=100")],
            )),
        }
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

/// Query strings are parsed with precise 400s too.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(QueryParams)
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}"), vec![]))
    }
}
