//! Template variables (DESIGN §6) computed from one event document (§4) and the automation that
//! fired on it.
//!
//! Every name of [`KNOWN_VARIABLES`] is always present in a [`Variables`] built by
//! [`Variables::from_event`]; one that does not apply to the event (`${alias}` on a run event,
//! `${metric_value}` on an artifact event) is the empty string, as in W&B. Event fields are taken
//! leniently: a string is used as is, a number or boolean as its JSON text, `null` or a missing
//! field as "". `${run_state}` is the state the producer sent (`CRASHED` stays `CRASHED`, although
//! matching treats it as `FAILED`).
//!
//! `${artifact_metadata.KEY}` is the JSON text of `artifact.metadata[KEY]` (a string without its
//! quotes, `null` as `null`, objects and arrays as compact JSON). Beyond W&B, a dotted KEY also
//! reaches into nested objects (`artifact_metadata.eval.auc`) when no top-level key has that
//! exact name; a key that is absent renders as "".

use std::collections::BTreeMap;

use serde_json::Value;

/// The variable names of DESIGN §6, without the dynamic `artifact_metadata.KEY` family (see
/// [`ARTIFACT_METADATA_PREFIX`]) and without `ACCESS_TOKEN`, which is a secret, not a variable.
pub const KNOWN_VARIABLES: &[&str] = &[
    "project_name",
    "entity_name",
    "event_type",
    "event_author",
    "alias",
    "tag",
    "artifact_collection_name",
    "artifact_version",
    "artifact_version_string",
    "run_id",
    "run_name",
    "run_state",
    "run_url",
    "metric_name",
    "metric_value",
    "automation_name",
    "event_id",
];

/// `${artifact_metadata.KEY}` names one metadata value of the event's artifact.
pub const ARTIFACT_METADATA_PREFIX: &str = "artifact_metadata.";

/// How deep a dotted metadata key may reach into nested objects. Bounds the work (and the copies
/// of nested JSON text) a large, deeply nested metadata object can cause.
const MAX_METADATA_DEPTH: usize = 8;

/// Whether `name` (the text between `${` and `}`) is a variable: one of [`KNOWN_VARIABLES`] or
/// `artifact_metadata.` followed by a non-empty key.
pub fn is_variable_name(name: &str) -> bool {
    KNOWN_VARIABLES.contains(&name) || name.strip_prefix(ARTIFACT_METADATA_PREFIX).is_some_and(|key| !key.is_empty())
}

/// What the event itself does not say: which automation fired and, for metric events, on what.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderContext<'a> {
    pub automation_name: &'a str,
    /// The automation's event type (`RUN_METRIC`, `RUN_STATE`, `ADD_ARTIFACT_ALIAS`, …): what
    /// `${event_type}` shows. When empty, the event's own `type` is used.
    pub event_type: &'a str,
    pub metric_name: Option<&'a str>,
    /// The aggregate, change or z-score that made a metric automation fire.
    pub metric_value: Option<f64>,
}

/// Variable name → value, everything a template can substitute for one (event, automation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

impl Variables {
    /// An empty set: every `${name}` renders as "".
    pub fn new() -> Variables {
        Variables::default()
    }

    /// The variables of `event` (a §4 event document) for the automation described by `ctx`.
    pub fn from_event(event: &Value, ctx: &RenderContext) -> Variables {
        let field = |path: &[&str]| -> String {
            let mut value = event;
            for key in path {
                match value.get(key) {
                    Some(next) => value = next,
                    None => return String::new(),
                }
            }
            field_text(value)
        };

        let team = field(&["team"]);
        let project = field(&["project"]);
        let collection = field(&["artifact", "collection"]);
        let version = field(&["artifact", "version"]);
        let version_string = if collection.is_empty() || version.is_empty() {
            String::new()
        } else {
            format!("{team}/{project}/{collection}:{version}")
        };
        let event_type = if ctx.event_type.is_empty() { field(&["type"]) } else { ctx.event_type.to_owned() };

        let mut vars = Variables::new();
        vars.insert("project_name", project);
        vars.insert("entity_name", team);
        vars.insert("event_type", event_type);
        vars.insert("event_author", field(&["author"]));
        vars.insert("alias", field(&["alias"]));
        vars.insert("tag", field(&["tag"]));
        vars.insert("artifact_collection_name", collection);
        vars.insert("artifact_version", version);
        vars.insert("artifact_version_string", version_string);
        vars.insert("run_id", field(&["run", "id"]));
        vars.insert("run_name", field(&["run", "name"]));
        vars.insert("run_state", field(&["run", "state"]));
        vars.insert("run_url", field(&["run", "url"]));
        vars.insert("metric_name", ctx.metric_name.unwrap_or_default());
        vars.insert("metric_value", ctx.metric_value.map(format_metric_value).unwrap_or_default());
        vars.insert("automation_name", ctx.automation_name);
        vars.insert("event_id", field(&["id"]));

        if let Some(Value::Object(metadata)) = event.pointer("/artifact/metadata") {
            // Exact top-level keys first, so a key that itself contains dots wins over a nested path.
            for (key, value) in metadata {
                vars.insert(format!("{ARTIFACT_METADATA_PREFIX}{key}"), json_text(value));
            }
            for (key, value) in metadata {
                if let Value::Object(inner) = value {
                    let prefix = format!("{ARTIFACT_METADATA_PREFIX}{key}.");
                    vars.insert_nested_metadata(&prefix, inner, 2);
                }
            }
        }
        vars
    }

    fn insert_nested_metadata(&mut self, prefix: &str, object: &serde_json::Map<String, Value>, depth: usize) {
        if depth > MAX_METADATA_DEPTH {
            return;
        }
        for (key, value) in object {
            let name = format!("{prefix}{key}");
            if let Value::Object(inner) = value {
                self.insert_nested_metadata(&format!("{name}."), inner, depth + 1);
            }
            self.values.entry(name).or_insert_with(|| json_text(value));
        }
    }

    /// The value of `name`, or `None` when it is not set (an unknown name, a metadata key the
    /// artifact does not have). Renderers treat `None` as "".
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Sets one variable (tests, previews with hand-made values).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// All variables, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// An event field as template text: strings as they are, absent/`null` as "", anything else as
/// its JSON text.
fn field_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        other => json_text(other),
    }
}

/// A value's JSON text, except that a string is its content without quotes.
fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        // serde_json's own text keeps what the producer sent apart: `4` stays `4`, `4.0` stays `4.0`.
        other => other.to_string(),
    }
}

/// The shortest JSON number text of `v` that reads back as the same `f64`: serde_json's text
/// without a trailing `.0` (`4`, `0.5`, `1e-7`, `1e+16`), or `NaN`, `Infinity`, `-Infinity`,
/// which JSON cannot express.
pub fn format_metric_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let Some(number) = serde_json::Number::from_f64(v) else {
        return "NaN".to_owned();
    };
    let mut text = number.to_string();
    if let Some(stripped) = text.strip_suffix(".0") {
        text.truncate(stripped.len());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx<'a>(event_type: &'a str) -> RenderContext<'a> {
        RenderContext { automation_name: "prod alias", event_type, metric_name: None, metric_value: None }
    }

    fn artifact_event(event_type: &str) -> Value {
        json!({
            "v": 1, "id": "evt_01JART", "type": event_type, "time": "2026-11-23T10:00:00Z",
            "team": "ml-team", "project": "wandb-registry-models", "author": "alice",
            "artifact": {
                "collection": "churn-model", "version": "v7", "type": "model",
                "aliases": ["latest", "production"], "tags": ["xgb"],
                "metadata": {"auc": 0.91, "framework": "xgboost", "epochs": 12,
                             "params": {"depth": 6, "eta": 0.3}, "ok": true, "none": null,
                             "a.b": "dotted key"},
                "url": "https://wandb.example/ml-team/models/churn-model/v7"
            },
            "alias": "production", "tag": "xgb"
        })
    }

    fn run_event(event_type: &str) -> Value {
        json!({
            "v": 1, "id": "evt_01JRUN", "type": event_type, "time": "2026-11-23T10:00:00Z",
            "team": "ml-team", "project": "llm-pretrain", "author": "bob",
            "run": {"id": "r-42", "name": "ablation-7", "state": "FAILED",
                    "tags": ["baseline"], "config": {"lr": 0.001},
                    "url": "https://wandb.example/ml-team/llm-pretrain/runs/r-42"},
            "history": {"step": 12, "values": {"loss": 4.5}}
        })
    }

    fn assert_vars(vars: &Variables, expected: &[(&str, &str)]) {
        for name in KNOWN_VARIABLES {
            let want = expected.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or("");
            assert_eq!(vars.get(name), Some(want), "variable {name}");
        }
        for (name, _) in expected {
            assert!(is_variable_name(name), "{name} is not a known variable");
        }
    }

    #[test]
    fn artifact_events_fill_every_artifact_variable() {
        for (event_type, alias, tag) in [
            ("CREATE_ARTIFACT", "production", "xgb"),
            ("LINK_ARTIFACT", "production", "xgb"),
            ("ADD_ARTIFACT_ALIAS", "production", "xgb"),
            ("ADD_ARTIFACT_TAG", "production", "xgb"),
        ] {
            let mut event = artifact_event(event_type);
            if event_type != "ADD_ARTIFACT_ALIAS" {
                event.as_object_mut().unwrap().remove("alias");
            }
            if event_type != "ADD_ARTIFACT_TAG" {
                event.as_object_mut().unwrap().remove("tag");
            }
            let vars = Variables::from_event(&event, &ctx(event_type));
            let mut expected = vec![
                ("project_name", "wandb-registry-models"),
                ("entity_name", "ml-team"),
                ("event_type", event_type),
                ("event_author", "alice"),
                ("artifact_collection_name", "churn-model"),
                ("artifact_version", "v7"),
                ("artifact_version_string", "ml-team/wandb-registry-models/churn-model:v7"),
                ("automation_name", "prod alias"),
                ("event_id", "evt_01JART"),
            ];
            if event_type == "ADD_ARTIFACT_ALIAS" {
                expected.push(("alias", alias));
            }
            if event_type == "ADD_ARTIFACT_TAG" {
                expected.push(("tag", tag));
            }
            assert_vars(&vars, &expected);
        }
    }

    #[test]
    fn run_state_event_fills_run_variables() {
        let vars = Variables::from_event(&run_event("RUN_STATE"), &ctx("RUN_STATE"));
        assert_vars(
            &vars,
            &[
                ("project_name", "llm-pretrain"),
                ("entity_name", "ml-team"),
                ("event_type", "RUN_STATE"),
                ("event_author", "bob"),
                ("run_id", "r-42"),
                ("run_name", "ablation-7"),
                ("run_state", "FAILED"),
                ("run_url", "https://wandb.example/ml-team/llm-pretrain/runs/r-42"),
                ("automation_name", "prod alias"),
                ("event_id", "evt_01JRUN"),
            ],
        );
    }

    #[test]
    fn metric_events_take_type_name_and_value_from_the_context() {
        for (automation_type, value, text) in
            [("RUN_METRIC", 4.0, "4"), ("RUN_METRIC_CHANGE", 0.1, "0.1"), ("RUN_METRIC_ZSCORE", f64::NAN, "NaN")]
        {
            let context = RenderContext {
                automation_name: "loss diverged",
                event_type: automation_type,
                metric_name: Some("loss"),
                metric_value: Some(value),
            };
            let vars = Variables::from_event(&run_event("RUN_HISTORY"), &context);
            assert_vars(
                &vars,
                &[
                    ("project_name", "llm-pretrain"),
                    ("entity_name", "ml-team"),
                    ("event_type", automation_type),
                    ("event_author", "bob"),
                    ("run_id", "r-42"),
                    ("run_name", "ablation-7"),
                    ("run_state", "FAILED"),
                    ("run_url", "https://wandb.example/ml-team/llm-pretrain/runs/r-42"),
                    ("metric_name", "loss"),
                    ("metric_value", text),
                    ("automation_name", "loss diverged"),
                    ("event_id", "evt_01JRUN"),
                ],
            );
        }
    }

    #[test]
    fn event_type_falls_back_to_the_event_when_the_context_has_none() {
        let vars = Variables::from_event(&run_event("RUN_STATE"), &ctx(""));
        assert_eq!(vars.get("event_type"), Some("RUN_STATE"));
    }

    #[test]
    fn missing_and_odd_fields_render_empty_or_as_json_text() {
        let event = json!({"id": "e", "type": "RUN_STATE", "team": "t", "project": "p",
                           "author": null, "run": {"id": 42, "name": "n"}});
        let vars = Variables::from_event(&event, &ctx("RUN_STATE"));
        assert_eq!(vars.get("event_author"), Some(""));
        assert_eq!(vars.get("run_id"), Some("42"));
        assert_eq!(vars.get("run_state"), Some(""));
        assert_eq!(vars.get("artifact_version_string"), Some(""));
        assert_eq!(vars.get("not_a_variable"), None);
    }

    #[test]
    fn artifact_metadata_values_are_json_text() {
        let vars = Variables::from_event(&artifact_event("ADD_ARTIFACT_ALIAS"), &ctx("ADD_ARTIFACT_ALIAS"));
        let meta = |key: &str| vars.get(&format!("artifact_metadata.{key}"));
        assert_eq!(meta("auc"), Some("0.91"));
        assert_eq!(meta("epochs"), Some("12"));
        assert_eq!(meta("framework"), Some("xgboost"));
        assert_eq!(meta("params"), Some(r#"{"depth":6,"eta":0.3}"#));
        assert_eq!(meta("ok"), Some("true"));
        assert_eq!(meta("none"), Some("null"));
        assert_eq!(meta("params.depth"), Some("6"));
        assert_eq!(meta("params.eta"), Some("0.3"));
        assert_eq!(meta("a.b"), Some("dotted key"));
        assert_eq!(meta("missing"), None);
    }

    #[test]
    fn a_top_level_dotted_key_wins_over_a_nested_path() {
        let event = json!({"team": "t", "project": "p", "artifact": {"collection": "c",
            "version": "v1", "metadata": {"x.y": "top", "x": {"y": "nested"}}}});
        let vars = Variables::from_event(&event, &ctx("CREATE_ARTIFACT"));
        assert_eq!(vars.get("artifact_metadata.x.y"), Some("top"));
    }

    #[test]
    fn metric_values_use_the_shortest_json_number_text() {
        assert_eq!(format_metric_value(4.0), "4");
        assert_eq!(format_metric_value(0.1), "0.1");
        assert_eq!(format_metric_value(0.5), "0.5");
        assert_eq!(format_metric_value(-2.5), "-2.5");
        assert_eq!(format_metric_value(1e-7), "1e-7");
        assert_eq!(format_metric_value(1e16), "1e+16");
        assert_eq!(format_metric_value(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_metric_value(f64::NAN), "NaN");
        assert_eq!(format_metric_value(f64::INFINITY), "Infinity");
        assert_eq!(format_metric_value(f64::NEG_INFINITY), "-Infinity");
        // Every finite result is a JSON number that reads back as the same f64.
        for v in [4.0, 0.1, 1e-7, 1e21, 1e300, -0.0, 123456789.125, f64::MIN_POSITIVE] {
            let text = format_metric_value(v);
            let parsed: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, v, "{text}");
        }
    }
}
