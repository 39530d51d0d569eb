//! Does an automation's static condition hold for an event (DESIGN §5)?
//!
//! "Static" is everything that can be decided from the event alone: scope (a registry is the
//! project `wandb-registry-<R>`; a collection scope also needs the artifact's collection),
//! event type, `alias_regex` / `tag_regex`, the run states of `RUN_STATE` (CRASHED counts as
//! FAILED), the presence of the watched metric in a history row, and the `filter` over the
//! event document. Metric windows and cooldowns are state, and belong to the ingest use case.
//!
//! An automation is compiled once ([`CompiledAutomation::compile`]) and checked against many
//! events; a check that fails says why in words a user reads in a preview ("alias production
//! does not match ^staging$"). Whether the automation is enabled is the caller's business, so a
//! preview of a paused automation still explains what it would do.

use regex::{Regex, RegexBuilder};

use super::filter::{Filter, FilterError};
use super::window::{
    MetricWindow, evaluate_change, evaluate_threshold, evaluate_zscore, required_capacity_change,
    required_capacity_threshold, required_capacity_zscore,
};
use crate::domain::automation::{Automation, EventSpec, Scope};
use crate::domain::event::{Event, EventType};

/// Upper bound on a compiled alias or tag regex, as for filter regexes: a hostile pattern costs
/// memory once at save time, not on every event.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a stored automation could not be compiled. Specs are validated at save time, so this
/// means stored data that no longer passes validation; the field is its path in the spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    #[error("event.filter.{}: {}", .0.path, .0.message)]
    Filter(FilterError),
    #[error("{field}: {message}")]
    Regex { field: &'static str, message: String },
}

impl CompileError {
    /// The path of the fault in the automation spec (`event.filter.run.name.$regex`).
    pub fn field(&self) -> String {
        match self {
            CompileError::Filter(e) => crate::domain::error::join_path("event.filter", &e.path),
            CompileError::Regex { field, .. } => (*field).to_owned(),
        }
    }
}

/// Compiles an `alias_regex` or `tag_regex` the way it is matched: unanchored (`is_match`), so
/// users anchor with `^…$` as in any regex search.
pub fn compile_regex(pattern: &str, field: &'static str) -> Result<Regex, CompileError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| CompileError::Regex { field, message: e.to_string() })
}

/// Why an automation does not match an event: a sentence for the preview and the logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Mismatch {
    pub reason: String,
}

/// An automation with its filter and regex compiled, ready to be checked against events.
#[derive(Debug, Clone)]
pub struct CompiledAutomation {
    pub automation: Automation,
    filter: Option<Filter>,
    /// `alias_regex` or `tag_regex`, for the two event types that have one.
    pattern: Option<Regex>,
}

impl CompiledAutomation {
    pub fn compile(automation: Automation) -> Result<CompiledAutomation, CompileError> {
        let event = &automation.spec.event;
        let filter = event.filter().map(Filter::parse).transpose().map_err(CompileError::Filter)?;
        let pattern = match event {
            EventSpec::AddArtifactAlias { alias_regex, .. } => Some(compile_regex(alias_regex, "event.alias_regex")?),
            EventSpec::AddArtifactTag { tag_regex, .. } => Some(compile_regex(tag_regex, "event.tag_regex")?),
            _ => None,
        };
        Ok(CompiledAutomation { automation, filter, pattern })
    }

    /// Ok when every static condition holds for `event`, else the first that does not, checked
    /// cheapest first (type, scope, regex or state, then the filter), as a sentence.
    pub fn check(&self, event: &Event) -> Result<(), Mismatch> {
        match self.first_failure(event) {
            None => Ok(()),
            Some(failed) => Err(Mismatch { reason: failed.explain(self, event) }),
        }
    }

    /// `check` without the sentence: ingest asks this of every automation for every event.
    pub fn matches(&self, event: &Event) -> bool {
        self.first_failure(event).is_none()
    }

    fn first_failure(&self, event: &Event) -> Option<Failed> {
        let spec = &self.automation.spec;
        if event.event_type != spec.event.source_event() {
            return Some(Failed::EventType);
        }
        if let Some(failed) = scope_failure(&spec.scope, event) {
            return Some(failed);
        }
        let holds = match &spec.event {
            EventSpec::AddArtifactAlias { .. } => {
                let alias = event.alias.as_deref().unwrap_or_default();
                self.pattern.as_ref().is_some_and(|re| re.is_match(alias))
            }
            EventSpec::AddArtifactTag { .. } => {
                let tag = event.tag.as_deref().unwrap_or_default();
                self.pattern.as_ref().is_some_and(|re| re.is_match(tag))
            }
            EventSpec::RunState { states, .. } => {
                event.run.as_ref().and_then(|r| r.state).is_some_and(|s| states.contains(&s.normalized()))
            }
            EventSpec::RunMetric { .. } | EventSpec::RunMetricChange { .. } | EventSpec::RunMetricZscore { .. } => {
                let name = spec.event.metric_name().unwrap_or_default();
                event.history.as_ref().and_then(|h| h.values.get(name)).is_some_and(|v| v.as_f64().is_some())
            }
            EventSpec::CreateArtifact { .. } | EventSpec::LinkArtifact { .. } => true,
        };
        if !holds {
            return Some(Failed::Condition);
        }
        if let Some(filter) = &self.filter
            && !filter.matches(&event.doc)
        {
            return Some(Failed::Filter);
        }
        None
    }

    /// The metric this automation watches, for the three metric events.
    pub fn metric_name(&self) -> Option<&str> {
        self.automation.spec.event.metric_name()
    }

    /// How many values its metric window must keep, for the three metric events.
    pub fn window_capacity(&self) -> Option<usize> {
        match &self.automation.spec.event {
            EventSpec::RunMetric { metric, .. } => Some(required_capacity_threshold(metric)),
            EventSpec::RunMetricChange { metric, .. } => Some(required_capacity_change(metric)),
            EventSpec::RunMetricZscore { metric, .. } => Some(required_capacity_zscore(metric)),
            _ => None,
        }
    }

    /// The figure that fires a metric automation on the window ending at the row just applied
    /// (aggregate, change or z-score), or None when it does not fire or is no metric automation.
    pub fn evaluate(&self, window: &MetricWindow) -> Option<f64> {
        match &self.automation.spec.event {
            EventSpec::RunMetric { metric, .. } => evaluate_threshold(window, metric),
            EventSpec::RunMetricChange { metric, .. } => evaluate_change(window, metric),
            EventSpec::RunMetricZscore { metric, .. } => evaluate_zscore(window, metric),
            _ => None,
        }
    }
}

/// Which static condition failed; put into words only when someone reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failed {
    EventType,
    Project,
    Registry,
    Collection,
    /// The event type's own condition: alias or tag regex, run state, metric in the row.
    Condition,
    Filter,
}

impl Failed {
    fn explain(self, automation: &CompiledAutomation, event: &Event) -> String {
        let spec = &automation.automation.spec;
        let project = event.project.as_str();
        match (self, &spec.scope) {
            (Failed::EventType, _) => format!(
                "event type {} does not trigger {} automations",
                event.event_type.as_str(),
                spec.event.type_name()
            ),
            (Failed::Project, Scope::Project { project: wanted }) => format!("project {project} is not {wanted}"),
            (Failed::Registry, Scope::Registry { registry } | Scope::Collection { registry, .. }) => {
                format!("project {project} is not registry {registry}")
            }
            (Failed::Collection, Scope::Collection { collection, .. }) => match &event.artifact {
                Some(artifact) => format!("collection {} is not {collection}", artifact.collection),
                None => format!("the event has no artifact, so no collection {collection}"),
            },
            (Failed::Condition, _) => condition_reason(&spec.event, event),
            (Failed::Filter, _) => "the filter does not match the event".to_owned(),
            (_, scope) => format!("the event is outside the scope {scope:?}"),
        }
    }
}

fn condition_reason(spec: &EventSpec, event: &Event) -> String {
    match spec {
        EventSpec::AddArtifactAlias { alias_regex, .. } => {
            format!("alias {} does not match {alias_regex}", event.alias.as_deref().unwrap_or_default())
        }
        EventSpec::AddArtifactTag { tag_regex, .. } => {
            format!("tag {} does not match {tag_regex}", event.tag.as_deref().unwrap_or_default())
        }
        EventSpec::RunState { states, .. } => match event.run.as_ref().and_then(|r| r.state) {
            None => "the event has no run state".to_owned(),
            Some(state) => {
                let listed = states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                let counted = if state.normalized() != state { " (counted as FAILED)" } else { "" };
                format!("run state {}{counted} is not one of {listed}", state.as_str())
            }
        },
        _ => format!("the history row has no value for metric {}", spec.metric_name().unwrap_or_default()),
    }
}

fn scope_failure(scope: &Scope, event: &Event) -> Option<Failed> {
    match scope {
        Scope::Project { project } => (project.as_str() != event.project.as_str()).then_some(Failed::Project),
        Scope::Registry { registry } => {
            (event.project.registry() != Some(registry.as_str())).then_some(Failed::Registry)
        }
        Scope::Collection { registry, collection } => {
            if event.project.registry() != Some(registry.as_str()) {
                Some(Failed::Registry)
            } else if event.artifact.as_ref().is_none_or(|a| a.collection != collection.as_str()) {
                Some(Failed::Collection)
            } else {
                None
            }
        }
    }
}

/// The automations among `automations` whose static condition holds for `event`: the pure
/// matching step of ingest. Callers pass only enabled automations.
pub fn matching<'a>(
    automations: &'a [CompiledAutomation],
    event: &'a Event,
) -> impl Iterator<Item = &'a CompiledAutomation> + 'a {
    automations.iter().filter(move |a| a.matches(event))
}

/// Whether any automation could be triggered by this event type at all (skips work early).
pub fn triggered_by(automation: &Automation, event_type: EventType) -> bool {
    automation.spec.event.source_event() == event_type
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::automation::AutomationSpecIn;
    use crate::domain::names::ObjectId;

    fn automation(spec: Value) -> CompiledAutomation {
        let spec = serde_json::from_value::<AutomationSpecIn>(spec).unwrap().validate().unwrap();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let automation = Automation {
            id: ObjectId::parse("au_0123456789ABCDEFGHJKMNPQRS").unwrap(),
            spec,
            created_by: "alice".into(),
            created_at: at,
            updated_at: at,
        };
        CompiledAutomation::compile(automation).unwrap()
    }

    fn event(doc: Value) -> Event {
        Event::parse(&doc, Timestamp::from_second(1_800_000_000).unwrap()).unwrap()
    }

    fn alias_event(project: &str, collection: &str, alias: &str) -> Event {
        event(json!({"id":"e1","type":"ADD_ARTIFACT_ALIAS","team":"t","project":project,
                     "artifact":{"collection":collection,"version":"v1","metadata":{"auc":0.93}},"alias":alias}))
    }

    fn alias_automation(scope: Value, regex: &str) -> CompiledAutomation {
        automation(json!({"name":"a","scope":scope,
                          "event":{"type":"ADD_ARTIFACT_ALIAS","alias_regex":regex},"action":{"type":"no_op"}}))
    }

    fn reason(a: &CompiledAutomation, e: &Event) -> String {
        a.check(e).unwrap_err().reason
    }

    #[test]
    fn an_alias_that_does_not_match_says_which_alias_and_pattern() {
        let a = alias_automation(json!({"type":"project","project":"p"}), "^staging$");
        assert!(a.matches(&alias_event("p", "c", "staging")));
        assert_eq!(reason(&a, &alias_event("p", "c", "production")), "alias production does not match ^staging$");
    }

    #[test]
    fn alias_regexes_search_unless_anchored() {
        let a = alias_automation(json!({"type":"project","project":"p"}), "prod");
        assert!(a.matches(&alias_event("p", "c", "production")));
    }

    #[test]
    fn registry_scope_covers_every_collection_of_its_registry_project() {
        let a = alias_automation(json!({"type":"registry","registry":"models"}), ".*");
        assert!(a.matches(&alias_event("wandb-registry-models", "any-new-collection", "x")));
        assert_eq!(
            reason(&a, &alias_event("wandb-registry-datasets", "c", "x")),
            "project wandb-registry-datasets is not registry models"
        );
        assert!(!a.matches(&alias_event("models", "c", "x")));
    }

    #[test]
    fn collection_scope_needs_the_collection() {
        let a = alias_automation(json!({"type":"collection","registry":"models","collection":"churn"}), ".*");
        assert!(a.matches(&alias_event("wandb-registry-models", "churn", "x")));
        assert_eq!(reason(&a, &alias_event("wandb-registry-models", "fraud", "x")), "collection fraud is not churn");
    }

    #[test]
    fn the_event_type_must_be_the_one_the_automation_waits_for() {
        let a = alias_automation(json!({"type":"project","project":"p"}), ".*");
        let tag = event(json!({"id":"e","type":"ADD_ARTIFACT_TAG","team":"t","project":"p",
                               "artifact":{"collection":"c","version":"v1"},"tag":"x"}));
        assert_eq!(reason(&a, &tag), "event type ADD_ARTIFACT_TAG does not trigger ADD_ARTIFACT_ALIAS automations");
    }

    #[test]
    fn tag_regexes_match_the_added_tag() {
        let a = automation(json!({"name":"a","scope":{"type":"project","project":"p"},
                                  "event":{"type":"ADD_ARTIFACT_TAG","tag_regex":"^ready$"},"action":{"type":"no_op"}}));
        let tag = |t: &str| {
            event(json!({"id":"e","type":"ADD_ARTIFACT_TAG","team":"t","project":"p",
                         "artifact":{"collection":"c","version":"v1"},"tag":t}))
        };
        assert!(a.matches(&tag("ready")));
        assert_eq!(reason(&a, &tag("draft")), "tag draft does not match ^ready$");
    }

    fn run_state(state: &str) -> Event {
        event(json!({"id":"e","type":"RUN_STATE","team":"t","project":"p","run":{"id":"r","name":"n","state":state}}))
    }

    #[test]
    fn crashed_runs_count_as_failed() {
        let a = automation(json!({"name":"a","scope":{"type":"project","project":"p"},
                                  "event":{"type":"RUN_STATE","states":["FAILED"]},"action":{"type":"no_op"}}));
        assert!(a.matches(&run_state("FAILED")));
        assert!(a.matches(&run_state("CRASHED")));
        assert_eq!(reason(&a, &run_state("FINISHED")), "run state FINISHED is not one of FAILED");
    }

    #[test]
    fn a_crash_is_explained_as_a_failure() {
        let a = automation(json!({"name":"a","scope":{"type":"project","project":"p"},
                                  "event":{"type":"RUN_STATE","states":["FINISHED"]},"action":{"type":"no_op"}}));
        assert_eq!(reason(&a, &run_state("CRASHED")), "run state CRASHED (counted as FAILED) is not one of FINISHED");
    }

    #[test]
    fn filters_see_the_event_document() {
        let a = automation(json!({"name":"a","scope":{"type":"project","project":"p"},
                                  "event":{"type":"ADD_ARTIFACT_ALIAS","alias_regex":".*",
                                           "filter":{"artifact.metadata.auc":{"$gte":0.9}}},
                                  "action":{"type":"no_op"}}));
        assert!(a.matches(&alias_event("p", "c", "x")));
        let mut low = alias_event("p", "c", "x");
        low.doc["artifact"]["metadata"]["auc"] = json!(0.5);
        assert_eq!(reason(&a, &low), "the filter does not match the event");
    }

    fn metric_automation() -> CompiledAutomation {
        automation(json!({"name":"a","scope":{"type":"project","project":"p"},
                          "event":{"type":"RUN_METRIC","metric":{"name":"loss","window":2,"cmp":"$gt","threshold":1}},
                          "action":{"type":"no_op"}}))
    }

    fn row(values: Value) -> Event {
        event(json!({"id":"e","type":"RUN_HISTORY","team":"t","project":"p","run":{"id":"r","name":"n"},
                     "history":{"step":1,"values":values}}))
    }

    #[test]
    fn metric_automations_need_their_metric_in_the_row() {
        let a = metric_automation();
        assert!(a.matches(&row(json!({"loss": 2.0}))));
        assert_eq!(reason(&a, &row(json!({"acc": 2.0}))), "the history row has no value for metric loss");
        assert_eq!(reason(&a, &row(json!({"loss": null}))), "the history row has no value for metric loss");
        assert_eq!(a.window_capacity(), Some(2));
        assert_eq!(a.metric_name(), Some("loss"));
    }

    #[test]
    fn metric_automations_evaluate_their_window() {
        let a = metric_automation();
        let mut w = MetricWindow::default();
        w.observe(1, Some(2.0), 2);
        assert_eq!(a.evaluate(&w), None);
        w.observe(2, Some(4.0), 2);
        assert_eq!(a.evaluate(&w), Some(3.0));
    }

    #[test]
    fn a_stored_filter_that_no_longer_parses_is_named_by_its_path() {
        let mut a = metric_automation().automation;
        if let EventSpec::RunMetric { filter, .. } = &mut a.spec.event {
            *filter = Some(json!({"run.name": {"$regex": "("}}));
        }
        let err = CompiledAutomation::compile(a).unwrap_err();
        assert_eq!(err.field(), "event.filter.run.name.$regex");
    }
}

/// Matching against a reference written independently, over small random worlds.
#[cfg(test)]
mod properties {
    use jiff::Timestamp;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::domain::automation::AutomationSpecIn;
    use crate::domain::names::ObjectId;

    const PROJECTS: &[&str] = &["p", "wandb-registry-models", "wandb-registry-data"];
    const COLLECTIONS: &[&str] = &["churn", "fraud"];
    const ALIASES: &[&str] = &["production", "staging", "latest"];
    const PATTERNS: &[&str] = &["^production$", "prod|stag", "^latest", ".*"];

    #[derive(Debug, Clone)]
    enum ScopeCase {
        Project(&'static str),
        Registry(&'static str),
        Collection(&'static str, &'static str),
    }

    fn scope() -> impl Strategy<Value = ScopeCase> {
        prop_oneof![
            prop::sample::select(PROJECTS).prop_map(ScopeCase::Project),
            prop::sample::select(&["models", "data"][..]).prop_map(ScopeCase::Registry),
            (prop::sample::select(&["models", "data"][..]), prop::sample::select(COLLECTIONS))
                .prop_map(|(r, c)| ScopeCase::Collection(r, c)),
        ]
    }

    proptest! {
        #[test]
        fn alias_matching_agrees_with_the_reference(
            scope in scope(),
            pattern in prop::sample::select(PATTERNS),
            min_auc in prop::option::of(0.0f64..1.0),
            project in prop::sample::select(PROJECTS),
            collection in prop::sample::select(COLLECTIONS),
            alias in prop::sample::select(ALIASES),
            tag_event in any::<bool>(),
            auc in 0.0f64..1.0,
        ) {
            let scope_json = match &scope {
                ScopeCase::Project(p) => json!({"type":"project","project":p}),
                ScopeCase::Registry(r) => json!({"type":"registry","registry":r}),
                ScopeCase::Collection(r, c) => json!({"type":"collection","registry":r,"collection":c}),
            };
            let mut event_spec = json!({"type":"ADD_ARTIFACT_ALIAS","alias_regex":pattern});
            if let Some(min) = min_auc {
                event_spec["filter"] = json!({"artifact.metadata.auc": {"$gte": min}});
            }
            let spec = serde_json::from_value::<AutomationSpecIn>(
                json!({"name":"a","scope":scope_json,"event":event_spec,"action":{"type":"no_op"}}),
            ).unwrap().validate().unwrap();
            let at = Timestamp::from_second(0).unwrap();
            let id = ObjectId::parse("au_0123456789ABCDEFGHJKMNPQRS").unwrap();
            let compiled = CompiledAutomation::compile(Automation {
                id, spec, created_by: String::new(), created_at: at, updated_at: at,
            }).unwrap();
            let kind = if tag_event { "ADD_ARTIFACT_TAG" } else { "ADD_ARTIFACT_ALIAS" };
            let doc = json!({"id":"e","type":kind,"team":"t","project":project,"alias":alias,"tag":alias,
                             "artifact":{"collection":collection,"version":"v1","metadata":{"auc":auc}}});
            let event = Event::parse(&doc, at).unwrap();

            let in_scope = match scope {
                ScopeCase::Project(p) => p == project,
                ScopeCase::Registry(r) => project == format!("wandb-registry-{r}"),
                ScopeCase::Collection(r, c) => project == format!("wandb-registry-{r}") && collection == c,
            };
            let alias_ok = match pattern {
                "^production$" => alias == "production",
                "prod|stag" => alias == "production" || alias == "staging",
                "^latest" => alias == "latest",
                _ => true,
            };
            let filter_ok = min_auc.is_none_or(|min| auc >= min);
            let expected = !tag_event && in_scope && alias_ok && filter_ok;
            prop_assert_eq!(compiled.matches(&event), expected);
        }
    }
}
