//! Events from producers (schema v1): parsed strictly, unknown fields ignored.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{Faults, Invalid};
use super::names::{EventId, ProjectName, TeamName};

/// What happened in the tracking platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    CreateArtifact,
    LinkArtifact,
    AddArtifactAlias,
    AddArtifactTag,
    RunState,
    RunHistory,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CreateArtifact => "CREATE_ARTIFACT",
            EventType::LinkArtifact => "LINK_ARTIFACT",
            EventType::AddArtifactAlias => "ADD_ARTIFACT_ALIAS",
            EventType::AddArtifactTag => "ADD_ARTIFACT_TAG",
            EventType::RunState => "RUN_STATE",
            EventType::RunHistory => "RUN_HISTORY",
        }
    }

    pub fn is_run_event(self) -> bool {
        matches!(self, EventType::RunState | EventType::RunHistory)
    }
}

/// A run's state as producers report it. CRASHED counts as FAILED when matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    Running,
    Finished,
    Failed,
    Crashed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "RUNNING",
            RunState::Finished => "FINISHED",
            RunState::Failed => "FAILED",
            RunState::Crashed => "CRASHED",
        }
    }

    /// The state automations see: a crash is a failure.
    pub fn normalized(self) -> RunState {
        if self == RunState::Crashed { RunState::Failed } else { self }
    }
}

/// An artifact version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Artifact {
    pub collection: String,
    pub version: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub url: Option<String>,
}

/// A run; `name` is the human display name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub state: Option<RunState>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub config: Option<Value>,
    #[serde(default)]
    pub url: Option<String>,
}

/// One logged history row: metric values are numbers, null (skipped) or "NaN"/"Infinity"/"-Infinity".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct History {
    pub step: i64,
    #[schema(value_type = Object)]
    pub values: BTreeMap<String, MetricValue>,
}

/// A history value: JSON has no NaN, so producers send it as a string.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetricValue {
    Number(f64),
    Text(NonFinite),
    Null,
}

/// The non-finite values a producer can send as text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum NonFinite {
    NaN,
    Infinity,
    #[serde(rename = "-Infinity")]
    NegInfinity,
}

impl MetricValue {
    /// The value to put in a window; `None` for null (skipped).
    pub fn as_f64(self) -> Option<f64> {
        match self {
            MetricValue::Number(n) => Some(n),
            MetricValue::Text(NonFinite::NaN) => Some(f64::NAN),
            MetricValue::Text(NonFinite::Infinity) => Some(f64::INFINITY),
            MetricValue::Text(NonFinite::NegInfinity) => Some(f64::NEG_INFINITY),
            MetricValue::Null => None,
        }
    }
}

/// The wire form, checked field by field with the path of the first fault.
#[derive(Deserialize)]
struct EventIn {
    #[serde(default = "default_version")]
    v: u32,
    id: String,
    #[serde(rename = "type")]
    event_type: EventType,
    #[serde(default)]
    time: Option<Timestamp>,
    team: String,
    project: String,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    artifact: Option<Artifact>,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    run: Option<Run>,
    #[serde(default)]
    history: Option<History>,
}

fn default_version() -> u32 {
    1
}

/// A validated event. `doc` is the document filters and templates see: the producer's JSON
/// with `v`, `time` and `author` filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub event_type: EventType,
    pub time: Timestamp,
    pub team: TeamName,
    pub project: ProjectName,
    pub author: String,
    pub artifact: Option<Artifact>,
    pub alias: Option<String>,
    pub tag: Option<String>,
    pub run: Option<Run>,
    pub history: Option<History>,
    pub doc: Value,
}

/// A producer-supplied key part (run id, metric name) must not contain the key separator.
fn check_key_part(faults: &mut Faults, field: &str, value: &str) {
    if value.is_empty() || value.len() > 256 || value.contains('#') {
        faults.push(field, "must be 1-256 characters without '#'");
    }
}

impl Event {
    /// Parses one event document. `received_at` is the default for a missing `time`.
    pub fn parse(value: &Value, received_at: Timestamp) -> Result<Event, Invalid> {
        if !value.is_object() {
            return Err(Invalid::one("", "an event must be a JSON object"));
        }
        let raw: EventIn = serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            Invalid::one(field, e.into_inner().to_string())
        })?;
        let mut faults = Faults::default();
        if raw.v != 1 {
            faults.push("v", "unsupported schema version (only 1)");
        }
        let id = faults.take(EventId::parse(raw.id).map_err(|e| e.under("id")));
        let team = faults.take(TeamName::parse(raw.team).map_err(|e| e.under("team")));
        let project = faults.take(ProjectName::parse(raw.project).map_err(|e| e.under("project")));
        match raw.event_type {
            EventType::CreateArtifact | EventType::LinkArtifact => {
                require(&mut faults, raw.artifact.is_some(), "artifact");
            }
            EventType::AddArtifactAlias => {
                require(&mut faults, raw.artifact.is_some(), "artifact");
                require(&mut faults, raw.alias.is_some(), "alias");
            }
            EventType::AddArtifactTag => {
                require(&mut faults, raw.artifact.is_some(), "artifact");
                require(&mut faults, raw.tag.is_some(), "tag");
            }
            EventType::RunState => {
                require(&mut faults, raw.run.is_some(), "run");
                if let Some(run) = &raw.run {
                    require(&mut faults, run.state.is_some(), "run.state");
                }
            }
            EventType::RunHistory => {
                require(&mut faults, raw.run.is_some(), "run");
                require(&mut faults, raw.history.is_some(), "history");
            }
        }
        if let Some(run) = &raw.run {
            check_key_part(&mut faults, "run.id", &run.id);
        }
        if let Some(history) = &raw.history {
            for name in history.values.keys() {
                if name.is_empty() || name.len() > 256 {
                    faults.push(format!("history.values.{name}"), "metric names must be 1-256 characters");
                }
            }
        }
        if let Some(artifact) = &raw.artifact {
            if artifact.collection.is_empty() {
                faults.push("artifact.collection", "must not be empty");
            }
            if artifact.version.is_empty() {
                faults.push("artifact.version", "must not be empty");
            }
        }
        let (Some(id), Some(team), Some(project)) = (id, team, project) else {
            return Err(faults.into_invalid());
        };
        if !faults.is_empty() {
            return Err(faults.into_invalid());
        }
        let time = raw.time.unwrap_or(received_at);
        let author = raw.author.unwrap_or_default();
        let mut doc = value.clone();
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("v".into(), Value::from(1));
            obj.insert("time".into(), Value::String(time.to_string()));
            obj.insert("author".into(), Value::String(author.clone()));
        }
        Ok(Event {
            id,
            event_type: raw.event_type,
            time,
            team,
            project,
            author,
            artifact: raw.artifact,
            alias: raw.alias,
            tag: raw.tag,
            run: raw.run,
            history: raw.history,
            doc,
        })
    }
}

fn require(faults: &mut Faults, present: bool, field: &str) {
    if !present {
        faults.push(field, "is required for this event type");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn alias_event() -> Value {
        json!({"v":1,"id":"evt_1","type":"ADD_ARTIFACT_ALIAS","team":"ml-team","project":"wandb-registry-models",
               "artifact":{"collection":"churn","version":"v7","aliases":["production"]},"alias":"production","extra":1})
    }

    #[test]
    fn a_complete_event_parses_and_ignores_unknown_fields() {
        let e = Event::parse(&alias_event(), now()).unwrap();
        assert_eq!(e.event_type, EventType::AddArtifactAlias);
        assert_eq!(e.alias.as_deref(), Some("production"));
        assert_eq!(e.time, now());
        assert_eq!(e.doc["author"], "");
    }

    #[test]
    fn a_missing_type_specific_field_is_named() {
        let mut v = alias_event();
        v.as_object_mut().unwrap().remove("alias");
        let err = Event::parse(&v, now()).unwrap_err();
        assert_eq!(err.0[0].field, "alias");
    }

    #[test]
    fn a_mistyped_nested_field_is_named_by_its_path() {
        let mut v = alias_event();
        v["artifact"]["version"] = json!(7);
        let err = Event::parse(&v, now()).unwrap_err();
        assert_eq!(err.0[0].field, "artifact.version");
    }

    #[test]
    fn a_bad_team_name_is_rejected() {
        let mut v = alias_event();
        v["team"] = json!("Bad#Team");
        assert_eq!(Event::parse(&v, now()).unwrap_err().0[0].field, "team");
    }

    #[test]
    fn history_values_accept_numbers_null_and_nan_text() {
        let v = json!({"id":"h1","type":"RUN_HISTORY","team":"t","project":"p","run":{"id":"r1","name":"n"},
                       "history":{"step":3,"values":{"loss":0.5,"acc":null,"x":"NaN"}}});
        let e = Event::parse(&v, now()).unwrap();
        let h = e.history.unwrap();
        assert_eq!(h.values["loss"].as_f64(), Some(0.5));
        assert_eq!(h.values["acc"].as_f64(), None);
        assert!(h.values["x"].as_f64().unwrap().is_nan());
    }

    #[test]
    fn run_state_events_need_a_state() {
        let v = json!({"id":"s1","type":"RUN_STATE","team":"t","project":"p","run":{"id":"r1","name":"n"}});
        assert_eq!(Event::parse(&v, now()).unwrap_err().0[0].field, "run.state");
    }

    #[test]
    fn crashed_counts_as_failed() {
        assert_eq!(RunState::Crashed.normalized(), RunState::Failed);
    }
}
