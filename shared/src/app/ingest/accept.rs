//! `POST /v1/events`: check a batch whole, then queue each new event for ingest.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::app::App;
use crate::app::error::{AppError, AppResult};
use crate::domain::error::FieldError;
use crate::domain::event::Event;
use crate::domain::team::Principal;
use crate::ports::queue::OutgoingMessage;

/// The most events one request may carry (DESIGN §4).
pub const MAX_BATCH_EVENTS: usize = 500;
/// SQS's limit on one message body.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The answer to a batch: `accepted` events were queued; `duplicates` were not, being repeats
/// of an id earlier in the batch or ids already processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub accepted: usize,
    pub duplicates: usize,
}

/// Parses every event of `body` (one event object or an array of them), checks that `who` may
/// post for each event's team, and queues the events not seen before. A single bad event
/// rejects the batch whole (400 naming `[i].field`), so a producer never has to work out which
/// half of a batch went through.
pub async fn accept_events(app: &App, who: &Principal, body: &Value) -> AppResult<Accepted> {
    let (elements, is_batch): (Vec<&Value>, bool) = match body {
        Value::Array(items) => (items.iter().collect(), true),
        Value::Object(_) => (vec![body], false),
        _ => {
            return Err(AppError::BadRequest {
                message: "the body must be an event object or an array of events".into(),
                errors: vec![FieldError::new("", "must be an object or an array")],
            });
        }
    };
    if elements.len() > MAX_BATCH_EVENTS {
        return Err(AppError::BadRequest {
            message: format!("a batch holds at most {MAX_BATCH_EVENTS} events; this one has {}", elements.len()),
            errors: vec![FieldError::new("", format!("at most {MAX_BATCH_EVENTS} events"))],
        });
    }
    let received_at = app.clock.now();
    let mut events = Vec::with_capacity(elements.len());
    let mut errors = Vec::new();
    for (i, element) in elements.iter().enumerate() {
        let prefix = if is_batch { format!("[{i}]") } else { String::new() };
        match Event::parse(element, received_at) {
            Ok(event) => match serde_json::to_string(&event.doc) {
                Ok(text) if text.len() <= MAX_MESSAGE_BYTES => events.push((event, text)),
                Ok(_) => errors.push(FieldError::new(prefix, "an event is at most 256 KiB")),
                Err(e) => return Err(AppError::Internal(format!("encoding an event: {e}"))),
            },
            Err(invalid) => errors.extend(invalid.0.into_iter().map(|e| e.under(&prefix))),
        }
    }
    if !errors.is_empty() {
        let message = match errors.as_slice() {
            [one] if one.field.is_empty() => format!("the event is invalid: {}", one.message),
            [one] => format!("{}: {}; nothing was accepted", one.field, one.message),
            many => format!("{} fields are invalid; nothing was accepted", many.len()),
        };
        return Err(AppError::BadRequest { message, errors });
    }

    let teams: BTreeSet<_> = events.iter().map(|(e, _)| e.team.clone()).collect();
    for team in &teams {
        app.access(who, team).await?.require_producer()?;
    }

    let mut in_batch = HashSet::new();
    let mut unique = Vec::with_capacity(events.len());
    for (event, text) in events {
        if in_batch.insert((event.team.clone(), event.id.clone())) {
            unique.push((event, text));
        }
    }
    let repeats = in_batch.len().abs_diff(elements.len());
    let ids: Vec<_> = unique.iter().map(|(e, _)| (e.team.clone(), e.id.clone())).collect();
    let seen = app.repo.events_seen(&ids).await?;
    let fresh: Vec<OutgoingMessage> = unique
        .into_iter()
        .filter(|(e, _)| !seen.contains(&(e.team.clone(), e.id.clone())))
        .map(|(_, text)| OutgoingMessage::new(text))
        .collect();
    let accepted = fresh.len();
    if !fresh.is_empty() {
        app.events.send_batch(fresh).await?;
    }
    tracing::info!(accepted, duplicates = repeats + seen.len(), "events queued");
    Ok(Accepted { accepted, duplicates: repeats + seen.len() })
}
