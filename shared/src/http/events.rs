//! `POST /v1/events`: producers post one event or a batch; ingest processes them from the queue.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, body_bytes, json_error};
use super::problem::{ApiResult, Problem};
use crate::app::App;
use crate::app::ingest::accept_events;
use crate::domain::event::{Artifact, EventType, History, Run};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(post_events))
}

/// `202` answer: how many events were queued, and how many were duplicates (repeats of an id
/// within the batch, or ids already processed) and so not queued again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventsAccepted {
    pub accepted: usize,
    pub duplicates: usize,
}

/// An event (schema v1, DESIGN §4); unknown fields are ignored. Documentation only: the
/// handler reads the raw JSON so that errors can name `[i].field`.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema)]
struct EventIn {
    /// Schema version, 1 (the default).
    v: Option<u32>,
    /// Producer-unique within the team, `^[A-Za-z0-9._:-]{1,128}$`: the dedupe key, kept 7 days.
    id: String,
    #[serde(rename = "type")]
    kind: EventType,
    /// RFC 3339; defaults to when the event was received.
    #[schema(value_type = Option<String>, format = DateTime)]
    time: Option<String>,
    team: String,
    /// Registries are the projects named `wandb-registry-<registry>`.
    project: String,
    author: Option<String>,
    /// Required for the artifact event types.
    artifact: Option<Artifact>,
    /// Required for ADD_ARTIFACT_ALIAS.
    alias: Option<String>,
    /// Required for ADD_ARTIFACT_TAG.
    tag: Option<String>,
    /// Required for RUN_STATE (with `state`) and RUN_HISTORY.
    run: Option<Run>,
    /// Required for RUN_HISTORY.
    history: Option<History>,
}

/// One event, or an array of at most 500.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
enum EventsIn {
    One(Box<EventIn>),
    Many(Vec<EventIn>),
}

/// Queues events for the automations of their teams. A batch with one invalid event is
/// rejected whole, each fault named by its path (`[3].team`, `[0].artifact.version`).
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    request_body(content = EventsIn, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = EventsAccepted),
        (status = 400, description = "Not JSON, more than 500 events, or an invalid event (`errors[].field` is `[i].field`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is neither producer nor admin of an event's team", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "An event's team does not exist or the caller has no role in it", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(event_id, automation_id, execution_id))]
async fn post_events(
    State(app): State<App>,
    Caller(who): Caller,
    request: Request,
) -> ApiResult<(StatusCode, Json<EventsAccepted>)> {
    let bytes = body_bytes(request).await?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let body: Value = serde_path_to_error::deserialize(de).map_err(|e| json_error(e, ""))?;
    let accepted = accept_events(&app, &who, &body).await?;
    Ok((StatusCode::ACCEPTED, Json(EventsAccepted { accepted: accepted.accepted, duplicates: accepted.duplicates })))
}
