//! Automations: scope, event condition and action (DESIGN §5).
//!
//! Requests arrive as `AutomationSpecIn`, a flat form that serde checks for unknown fields and
//! types; `validate` turns it into the typed `AutomationSpec` and names every faulty field.
//! Filters, regexes and templates are compiled by the engine and renderer at save time (app layer).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{Faults, Invalid};
use super::event::{EventType, RunState};
use super::metric::{ChangeMetric, ThresholdMetric, ZScoreMetric};
use super::names::{AutomationName, ObjectId, ProjectName};

/// Default cooldown of metric automations: one day.
pub const DEFAULT_COOLDOWN_SECONDS: u64 = 86_400;

/// Where an automation listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Scope {
    Project {
        project: ProjectName,
    },
    /// Every collection of the registry, including future ones.
    Registry {
        registry: ProjectName,
    },
    Collection {
        registry: ProjectName,
        collection: ProjectName,
    },
}

impl Scope {
    /// The project whose events this scope sees (a registry lives in `wandb-registry-<R>`).
    pub fn project(&self) -> Result<ProjectName, Invalid> {
        match self {
            Scope::Project { project } => Ok(project.clone()),
            Scope::Registry { registry } | Scope::Collection { registry, .. } => ProjectName::of_registry(registry),
        }
    }

    /// The registry, for registry and collection scopes.
    pub fn registry(&self) -> Option<&ProjectName> {
        match self {
            Scope::Project { .. } => None,
            Scope::Registry { registry } | Scope::Collection { registry, .. } => Some(registry),
        }
    }
}

/// The event an automation waits for, with its type-specific condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum EventSpec {
    #[serde(rename = "CREATE_ARTIFACT")]
    CreateArtifact {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Value>,
    },
    #[serde(rename = "LINK_ARTIFACT")]
    LinkArtifact {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Value>,
    },
    #[serde(rename = "ADD_ARTIFACT_ALIAS")]
    AddArtifactAlias {
        alias_regex: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Value>,
    },
    #[serde(rename = "ADD_ARTIFACT_TAG")]
    AddArtifactTag {
        tag_regex: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Value>,
    },
    #[serde(rename = "RUN_STATE")]
    RunState {
        states: Vec<RunState>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Value>,
    },
    #[serde(rename = "RUN_METRIC")]
    RunMetric {
        metric: ThresholdMetric,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Value>,
    },
    #[serde(rename = "RUN_METRIC_CHANGE")]
    RunMetricChange {
        metric: ChangeMetric,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Value>,
    },
    #[serde(rename = "RUN_METRIC_ZSCORE")]
    RunMetricZscore {
        metric: ZScoreMetric,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Value>,
    },
}

impl EventSpec {
    /// The W&B name of this event type (`${event_type}`).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventSpec::CreateArtifact { .. } => "CREATE_ARTIFACT",
            EventSpec::LinkArtifact { .. } => "LINK_ARTIFACT",
            EventSpec::AddArtifactAlias { .. } => "ADD_ARTIFACT_ALIAS",
            EventSpec::AddArtifactTag { .. } => "ADD_ARTIFACT_TAG",
            EventSpec::RunState { .. } => "RUN_STATE",
            EventSpec::RunMetric { .. } => "RUN_METRIC",
            EventSpec::RunMetricChange { .. } => "RUN_METRIC_CHANGE",
            EventSpec::RunMetricZscore { .. } => "RUN_METRIC_ZSCORE",
        }
    }

    /// The producer event type that can trigger this spec.
    pub fn source_event(&self) -> EventType {
        match self {
            EventSpec::CreateArtifact { .. } => EventType::CreateArtifact,
            EventSpec::LinkArtifact { .. } => EventType::LinkArtifact,
            EventSpec::AddArtifactAlias { .. } => EventType::AddArtifactAlias,
            EventSpec::AddArtifactTag { .. } => EventType::AddArtifactTag,
            EventSpec::RunState { .. } => EventType::RunState,
            EventSpec::RunMetric { .. } | EventSpec::RunMetricChange { .. } | EventSpec::RunMetricZscore { .. } => {
                EventType::RunHistory
            }
        }
    }

    pub fn filter(&self) -> Option<&Value> {
        match self {
            EventSpec::CreateArtifact { filter }
            | EventSpec::LinkArtifact { filter }
            | EventSpec::AddArtifactAlias { filter, .. }
            | EventSpec::AddArtifactTag { filter, .. }
            | EventSpec::RunState { filter, .. }
            | EventSpec::RunMetric { filter, .. }
            | EventSpec::RunMetricChange { filter, .. }
            | EventSpec::RunMetricZscore { filter, .. } => filter.as_ref(),
        }
    }

    /// The watched metric's name, for the three metric events.
    pub fn metric_name(&self) -> Option<&str> {
        match self {
            EventSpec::RunMetric { metric, .. } => Some(&metric.name),
            EventSpec::RunMetricChange { metric, .. } => Some(&metric.name),
            EventSpec::RunMetricZscore { metric, .. } => Some(&metric.name),
            _ => None,
        }
    }
}

/// How a Slack message is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    #[default]
    Info,
    Warn,
    Error,
}

/// What an automation does when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    Webhook {
        webhook_id: ObjectId,
        /// Any JSON; string values are templates (§6). None sends the default body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    Slack {
        integration_id: ObjectId,
        title: String,
        message: String,
        #[serde(default)]
        severity: Severity,
    },
    /// Records a skipped execution and sends nothing: for trying an automation out.
    NoOp,
}

/// The user-editable part of an automation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AutomationSpec {
    pub name: AutomationName,
    #[serde(default)]
    pub description: String,
    pub enabled: bool,
    pub cooldown_seconds: u64,
    pub scope: Scope,
    pub event: EventSpec,
    pub action: Action,
}

/// A stored automation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Automation {
    pub id: ObjectId,
    #[serde(flatten)]
    pub spec: AutomationSpec,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

// ---- Input form -------------------------------------------------------------------------------

/// An automation as clients send it (POST, PUT, and the result of a PATCH).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationSpecIn {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(default)]
    pub cooldown_seconds: Option<u64>,
    pub scope: ScopeIn,
    pub event: EventSpecIn,
    pub action: ActionIn,
    // Read-only fields a client may send back from a GET; PUT ignores them (DESIGN §8).
    #[serde(default)]
    #[schema(ignore)]
    pub id: Option<Value>,
    #[serde(default)]
    #[schema(ignore)]
    pub created_by: Option<Value>,
    #[serde(default)]
    #[schema(ignore)]
    pub created_at: Option<Value>,
    #[serde(default)]
    #[schema(ignore)]
    pub updated_at: Option<Value>,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    Project,
    Registry,
    Collection,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeIn {
    #[serde(rename = "type")]
    pub kind: ScopeKind,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub registry: Option<String>,
    #[serde(default)]
    pub collection: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    #[serde(rename = "CREATE_ARTIFACT")]
    CreateArtifact,
    #[serde(rename = "LINK_ARTIFACT")]
    LinkArtifact,
    #[serde(rename = "ADD_ARTIFACT_ALIAS")]
    AddArtifactAlias,
    #[serde(rename = "ADD_ARTIFACT_TAG")]
    AddArtifactTag,
    #[serde(rename = "RUN_STATE")]
    RunState,
    #[serde(rename = "RUN_METRIC")]
    RunMetric,
    #[serde(rename = "RUN_METRIC_CHANGE")]
    RunMetricChange,
    #[serde(rename = "RUN_METRIC_ZSCORE")]
    RunMetricZscore,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpecIn {
    #[serde(rename = "type")]
    pub kind: EventKind,
    #[serde(default)]
    pub filter: Option<Value>,
    #[serde(default)]
    pub alias_regex: Option<String>,
    #[serde(default)]
    pub tag_regex: Option<String>,
    #[serde(default)]
    pub states: Option<Vec<RunState>>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metric: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Webhook,
    Slack,
    NoOp,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionIn {
    #[serde(rename = "type")]
    pub kind: ActionKind,
    #[serde(default)]
    pub webhook_id: Option<String>,
    #[serde(default)]
    pub payload: Option<Value>,
    #[serde(default)]
    pub integration_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// Parses a JSON value into `T`, naming the path of the first fault under `prefix`.
fn parse_at<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        Invalid::one(path, e.into_inner().to_string()).under(prefix)
    })
}

fn name_at<T>(
    faults: &mut Faults,
    field: &str,
    value: Option<String>,
    parse: fn(String) -> Result<T, Invalid>,
) -> Option<T> {
    match value {
        None => {
            faults.push(field, "is required");
            None
        }
        Some(v) => faults.take(parse(v).map_err(|e| e.under(field))),
    }
}

impl AutomationSpecIn {
    /// Structural validation: names, required fields per type, metric parameters, scope rules.
    pub fn validate(self) -> Result<AutomationSpec, Invalid> {
        let mut faults = Faults::default();
        let name = faults.take(AutomationName::parse(self.name).map_err(|e| e.under("name")));
        if self.description.chars().count() > 4096 {
            faults.push("description", "must be at most 4096 characters");
        }
        let scope = validate_scope(self.scope, &mut faults);
        let event = validate_event(self.event, &mut faults);
        if let (Some(scope), Some(event)) = (&scope, &event)
            && event.source_event().is_run_event()
            && !matches!(scope, Scope::Project { .. })
        {
            faults.push("event.type", "run events are only allowed at project scope");
        }
        let action = validate_action(self.action, &mut faults);
        let cooldown_seconds = self.cooldown_seconds.unwrap_or(DEFAULT_COOLDOWN_SECONDS);
        if cooldown_seconds > 365 * 86_400 {
            faults.push("cooldown_seconds", "must be at most one year (31536000)");
        }
        match (name, scope, event, action) {
            (Some(name), Some(scope), Some(event), Some(action)) if faults.is_empty() => Ok(AutomationSpec {
                name,
                description: self.description,
                enabled: self.enabled,
                cooldown_seconds,
                scope,
                event,
                action,
            }),
            _ => Err(faults.into_invalid()),
        }
    }
}

fn validate_scope(scope: ScopeIn, faults: &mut Faults) -> Option<Scope> {
    let forbid = |faults: &mut Faults, present: bool, field: &str| {
        if present {
            faults.push(format!("scope.{field}"), "does not apply to this scope type");
        }
    };
    match scope.kind {
        ScopeKind::Project => {
            forbid(faults, scope.registry.is_some(), "registry");
            forbid(faults, scope.collection.is_some(), "collection");
            let project = name_at(faults, "scope.project", scope.project, ProjectName::parse)?;
            Some(Scope::Project { project })
        }
        ScopeKind::Registry => {
            forbid(faults, scope.project.is_some(), "project");
            forbid(faults, scope.collection.is_some(), "collection");
            let registry = name_at(faults, "scope.registry", scope.registry, ProjectName::parse)?;
            Some(Scope::Registry { registry })
        }
        ScopeKind::Collection => {
            forbid(faults, scope.project.is_some(), "project");
            let registry = name_at(faults, "scope.registry", scope.registry, ProjectName::parse);
            let collection = name_at(faults, "scope.collection", scope.collection, ProjectName::parse);
            Some(Scope::Collection { registry: registry?, collection: collection? })
        }
    }
}

fn validate_event(event: EventSpecIn, faults: &mut Faults) -> Option<EventSpec> {
    let filter = event.filter;
    let forbid = |faults: &mut Faults, present: bool, field: &str| {
        if present {
            faults.push(format!("event.{field}"), "does not apply to this event type");
        }
    };
    let kind = event.kind;
    let metric_event = matches!(kind, EventKind::RunMetric | EventKind::RunMetricChange | EventKind::RunMetricZscore);
    forbid(faults, event.alias_regex.is_some() && kind != EventKind::AddArtifactAlias, "alias_regex");
    forbid(faults, event.tag_regex.is_some() && kind != EventKind::AddArtifactTag, "tag_regex");
    forbid(faults, event.states.is_some() && kind != EventKind::RunState, "states");
    forbid(faults, event.metric.is_some() && !metric_event, "metric");
    let required =
        |faults: &mut Faults, field: &str| faults.push(format!("event.{field}"), "is required for this event type");
    match kind {
        EventKind::CreateArtifact => Some(EventSpec::CreateArtifact { filter }),
        EventKind::LinkArtifact => Some(EventSpec::LinkArtifact { filter }),
        EventKind::AddArtifactAlias => match event.alias_regex {
            Some(alias_regex) => Some(EventSpec::AddArtifactAlias { alias_regex, filter }),
            None => {
                required(faults, "alias_regex");
                None
            }
        },
        EventKind::AddArtifactTag => match event.tag_regex {
            Some(tag_regex) => Some(EventSpec::AddArtifactTag { tag_regex, filter }),
            None => {
                required(faults, "tag_regex");
                None
            }
        },
        EventKind::RunState => match event.states {
            Some(states) if !states.is_empty() => {
                if states.contains(&RunState::Crashed) {
                    faults.push("event.states", "CRASHED is matched as FAILED: use FAILED");
                }
                let mut states = states;
                states.sort();
                states.dedup();
                Some(EventSpec::RunState { states, filter })
            }
            Some(_) => {
                faults.push("event.states", "must name at least one state");
                None
            }
            None => {
                required(faults, "states");
                None
            }
        },
        EventKind::RunMetric | EventKind::RunMetricChange | EventKind::RunMetricZscore => {
            let Some(metric) = event.metric else {
                required(faults, "metric");
                return None;
            };
            let fault_list = |fs: Vec<super::metric::MetricFault>, faults: &mut Faults| {
                let ok = fs.is_empty();
                for f in fs {
                    faults.push(format!("event.metric.{}", f.field), f.message);
                }
                ok
            };
            match kind {
                EventKind::RunMetric => {
                    let m: ThresholdMetric = faults.take(parse_at(metric, "event.metric"))?;
                    fault_list(m.validate(), faults).then_some(EventSpec::RunMetric { metric: m, filter })
                }
                EventKind::RunMetricChange => {
                    let m: ChangeMetric = faults.take(parse_at(metric, "event.metric"))?;
                    fault_list(m.validate(), faults).then_some(EventSpec::RunMetricChange { metric: m, filter })
                }
                _ => {
                    let m: ZScoreMetric = faults.take(parse_at(metric, "event.metric"))?;
                    fault_list(m.validate(), faults).then_some(EventSpec::RunMetricZscore { metric: m, filter })
                }
            }
        }
    }
}

fn validate_action(action: ActionIn, faults: &mut Faults) -> Option<Action> {
    let forbid = |faults: &mut Faults, present: bool, field: &str| {
        if present {
            faults.push(format!("action.{field}"), "does not apply to this action type");
        }
    };
    match action.kind {
        ActionKind::Webhook => {
            forbid(faults, action.integration_id.is_some(), "integration_id");
            forbid(faults, action.title.is_some(), "title");
            forbid(faults, action.message.is_some(), "message");
            forbid(faults, action.severity.is_some(), "severity");
            let webhook_id = name_at(faults, "action.webhook_id", action.webhook_id, ObjectId::parse)?;
            Some(Action::Webhook { webhook_id, payload: action.payload })
        }
        ActionKind::Slack => {
            forbid(faults, action.webhook_id.is_some(), "webhook_id");
            forbid(faults, action.payload.is_some(), "payload");
            let integration_id = name_at(faults, "action.integration_id", action.integration_id, ObjectId::parse);
            let title = action.title.unwrap_or_default();
            let message = action.message.unwrap_or_default();
            if title.trim().is_empty() && message.trim().is_empty() {
                faults.push("action.message", "a Slack action needs a title or a message");
            }
            if title.chars().count() > 150 {
                faults.push("action.title", "must be at most 150 characters (Slack header limit)");
            }
            if message.chars().count() > 12_000 {
                faults.push("action.message", "must be at most 12000 characters");
            }
            Some(Action::Slack {
                integration_id: integration_id?,
                title,
                message,
                severity: action.severity.unwrap_or_default(),
            })
        }
        ActionKind::NoOp => {
            forbid(faults, action.webhook_id.is_some(), "webhook_id");
            forbid(faults, action.integration_id.is_some(), "integration_id");
            forbid(faults, action.payload.is_some(), "payload");
            Some(Action::NoOp)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: Value) -> Result<AutomationSpec, Invalid> {
        serde_json::from_value::<AutomationSpecIn>(v).unwrap().validate()
    }

    fn fields(r: Result<AutomationSpec, Invalid>) -> Vec<String> {
        r.unwrap_err().0.into_iter().map(|f| f.field).collect()
    }

    fn base() -> Value {
        json!({"name":"loss diverged","scope":{"type":"project","project":"llm"},
               "event":{"type":"RUN_METRIC","metric":{"name":"loss","agg":"AVERAGE","window":5,"cmp":"$gt","threshold":4.0}},
               "action":{"type":"no_op"}})
    }

    #[test]
    fn a_valid_spec_gets_defaults() {
        let s = spec(base()).unwrap();
        assert!(s.enabled);
        assert_eq!(s.cooldown_seconds, DEFAULT_COOLDOWN_SECONDS);
        assert_eq!(s.event.type_name(), "RUN_METRIC");
    }

    #[test]
    fn run_events_are_refused_at_registry_scope() {
        let mut v = base();
        v["scope"] = json!({"type":"registry","registry":"models"});
        assert_eq!(fields(spec(v)), vec!["event.type"]);
    }

    #[test]
    fn metric_faults_are_named_under_event_metric() {
        let mut v = base();
        v["event"]["metric"]["window"] = json!(0);
        assert_eq!(fields(spec(v)), vec!["event.metric.window"]);
    }

    #[test]
    fn alias_events_need_an_alias_regex() {
        let mut v = base();
        v["scope"] = json!({"type":"collection","registry":"models","collection":"churn"});
        v["event"] = json!({"type":"ADD_ARTIFACT_ALIAS"});
        assert_eq!(fields(spec(v)), vec!["event.alias_regex"]);
    }

    #[test]
    fn run_state_needs_states() {
        let mut v = base();
        v["event"] = json!({"type":"RUN_STATE","states":[]});
        assert_eq!(fields(spec(v)), vec!["event.states"]);
    }

    #[test]
    fn slack_actions_need_an_integration() {
        let mut v = base();
        v["action"] = json!({"type":"slack","title":"t"});
        assert_eq!(fields(spec(v)), vec!["action.integration_id"]);
    }

    #[test]
    fn unknown_fields_are_refused_by_serde() {
        let mut v = base();
        v["bogus"] = json!(1);
        assert!(serde_json::from_value::<AutomationSpecIn>(v).is_err());
    }

    #[test]
    fn the_typed_spec_round_trips_through_the_input_form() {
        let s = spec(base()).unwrap();
        let again =
            serde_json::from_value::<AutomationSpecIn>(serde_json::to_value(&s).unwrap()).unwrap().validate().unwrap();
        assert_eq!(s, again);
    }

    #[test]
    fn registry_scope_maps_to_the_registry_project() {
        let scope = Scope::Registry { registry: ProjectName::parse("models").unwrap() };
        assert_eq!(scope.project().unwrap().as_str(), "wandb-registry-models");
    }
}
