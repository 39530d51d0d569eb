//! HTTP: the axum routers served by API Gateway (through lambda_http) and by the local process.
//! Handlers are wiring: extract, call one use case in `crate::app`, map the result.

pub mod automations;
pub mod common;
pub mod events;
pub mod executions;
pub mod extract;
pub mod problem;
pub mod secrets;
pub mod slack_app;
pub mod slack_integrations;
pub mod slack_oauth;
pub mod system;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;
use crate::app::repo::Listed;
use extract::MAX_BODY_BYTES;
use problem::ApiError;

/// A page of a list: `{"items": [...], "next_cursor": null | "..."}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListOut<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> From<Listed<T>> for ListOut<T> {
    fn from(l: Listed<T>) -> Self {
        Self { items: l.items, next_cursor: l.next_cursor }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Automations API",
        description = "Event automations for ML teams: secrets, webhooks, Slack integrations, automations, events and their delivery history.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(problem::Problem, crate::domain::error::FieldError))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every documented `/v1` route, and the OpenAPI document that describes them.
fn documented() -> (Router<App>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(system::routes())
        .merge(secrets::routes())
        .merge(webhooks::routes())
        .merge(slack_integrations::routes())
        .merge(slack_app::routes())
        .merge(automations::routes())
        .merge(events::routes())
        .merge(executions::routes())
        .split_for_parts()
}

/// The OpenAPI 3.1 document of the config API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().1
}

/// The config API (`/v1/*`, `/healthz`): what the config-api function serves.
pub fn api_router(app: App) -> Router {
    let (router, doc) = documented();
    let doc = std::sync::Arc::new(doc);
    router
        .route("/v1/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// The Slack OAuth routes (`/slack/*`): what the slack-oauth function serves.
pub fn slack_router(app: App) -> Router {
    slack_oauth::routes().route("/healthz", get(|| async { "ok" })).fallback(not_found).with_state(app)
}

/// Both, as the local process serves them on one port.
pub fn local_router(app: App) -> Router {
    api_router(app.clone()).merge(slack_oauth::routes().with_state(app))
}

async fn not_found() -> impl IntoResponse {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "not-found", "no such route", vec![])
}
