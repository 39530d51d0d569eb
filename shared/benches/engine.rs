//! The engine's hot paths, per event: filter evaluation, matching one event against the 1,000
//! automations of a project, and one metric-window update.
//!
//! `cargo bench -p automations --bench engine`

use std::hint::black_box;

use automations::domain::automation::{Automation, AutomationSpecIn};
use automations::domain::event::Event;
use automations::domain::metric::{Agg, ChangeDir, Cmp, ThresholdMetric, ZScoreMetric};
use automations::domain::names::ObjectId;
use automations::engine::filter::Filter;
use automations::engine::matching::{CompiledAutomation, matching};
use automations::engine::window::{MetricWindow, evaluate_threshold, evaluate_zscore};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use serde_json::{Value, json};

fn at() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn alias_event() -> Event {
    let doc = json!({
        "v": 1, "id": "evt_01J", "type": "ADD_ARTIFACT_ALIAS", "team": "ml-team", "project": "wandb-registry-models",
        "author": "alice", "alias": "production",
        "artifact": {"collection": "churn-model", "version": "v7", "type": "model",
                     "aliases": ["latest", "production"], "tags": ["xgb", "tabular"],
                     "metadata": {"auc": 0.91, "rows": 1_200_000, "framework": "xgboost"}},
        "run": {"id": "r1", "name": "ablation-lr-3e-4", "tags": ["sweep", "baseline"]}
    });
    Event::parse(&doc, at()).expect("the bench event is valid")
}

fn typical_filter() -> Value {
    json!({
        "artifact.metadata.auc": {"$gte": 0.9},
        "artifact.tags": {"$in": ["xgb", "lgbm"]},
        "$or": [{"author": "alice"}, {"run.name": {"$regex": "^ablation-"}}]
    })
}

fn automation(i: usize, event: Value, scope: Value) -> CompiledAutomation {
    let spec = json!({"name": format!("automation {i}"), "scope": scope, "event": event, "action": {"type": "no_op"}});
    let spec = serde_json::from_value::<AutomationSpecIn>(spec).expect("bench specs parse");
    let automation = Automation {
        id: ObjectId::generate("au"),
        spec: spec.validate().expect("bench specs are valid"),
        created_by: "alice".into(),
        created_at: at(),
        updated_at: at(),
    };
    CompiledAutomation::compile(automation).expect("bench automations compile")
}

/// 1,000 automations of the registry project, all of the event's type: each is checked in full
/// (scope, alias regex, filter), the worst case of the matching step.
fn same_type_automations() -> Vec<CompiledAutomation> {
    (0..1000)
        .map(|i| {
            let scope = match i % 3 {
                0 => json!({"type": "registry", "registry": "models"}),
                1 => json!({"type": "collection", "registry": "models", "collection": "churn-model"}),
                _ => json!({"type": "collection", "registry": "models", "collection": format!("other-{i}")}),
            };
            let regex = if i % 2 == 0 { "^production$" } else { "^(staging|prod.*)$" };
            let mut event = json!({"type": "ADD_ARTIFACT_ALIAS", "alias_regex": regex});
            if i % 4 != 0 {
                event["filter"] = typical_filter();
            }
            automation(i, event, scope)
        })
        .collect()
}

/// 1,000 automations of a project as a team would have them: a mix of event types, most of
/// which the event's type rules out at once.
fn mixed_automations() -> Vec<CompiledAutomation> {
    let registry = json!({"type": "registry", "registry": "models"});
    (0..1000)
        .map(|i| match i % 5 {
            0 => automation(
                i,
                json!({"type": "ADD_ARTIFACT_ALIAS", "alias_regex": "^production$", "filter": typical_filter()}),
                registry.clone(),
            ),
            1 => automation(i, json!({"type": "LINK_ARTIFACT", "filter": typical_filter()}), registry.clone()),
            2 => automation(i, json!({"type": "ADD_ARTIFACT_TAG", "tag_regex": "^ready"}), registry.clone()),
            3 => automation(i, json!({"type": "CREATE_ARTIFACT"}), registry.clone()),
            _ => automation(i, json!({"type": "ADD_ARTIFACT_ALIAS", "alias_regex": "^staging$"}), registry.clone()),
        })
        .collect()
}

fn filters(c: &mut Criterion) {
    let event = alias_event();
    let filter = Filter::parse(&typical_filter()).expect("the bench filter is valid");
    c.bench_function("filter/evaluate (3 clauses, $in, $or, $regex)", |b| {
        b.iter(|| black_box(&filter).matches(black_box(&event.doc)))
    });
    let simple = Filter::parse(&json!({"run.name": {"$regex": "^ablation-"}})).expect("valid");
    c.bench_function("filter/evaluate (one $regex)", |b| b.iter(|| black_box(&simple).matches(black_box(&event.doc))));
}

fn matching_1000(c: &mut Criterion) {
    let event = alias_event();
    let same = same_type_automations();
    c.bench_function("match/1000 automations, all of the event's type", |b| {
        b.iter(|| matching(black_box(&same), black_box(&event)).count())
    });
    let mixed = mixed_automations();
    c.bench_function("match/1000 automations, mixed event types", |b| {
        b.iter(|| matching(black_box(&mixed), black_box(&event)).count())
    });
}

fn windows(c: &mut Criterion) {
    let threshold =
        ThresholdMetric { name: "loss".into(), agg: Agg::Average, window: 5, cmp: Cmp::Gt, threshold: Some(4.0) };
    let zscore = ZScoreMetric { name: "loss".into(), window: 30, threshold: 3.0, change_dir: ChangeDir::Any };
    let mut full = MetricWindow::default();
    for step in 0..31 {
        full.observe(step, Some((step as f64).sin()), 31);
    }
    c.bench_function("window/observe + threshold(5) + zscore(30)", |b| {
        b.iter_batched(
            || full.clone(),
            |mut w| {
                w.observe(100, Some(0.5), 31);
                (evaluate_threshold(&w, &threshold), evaluate_zscore(&w, &zscore))
            },
            BatchSize::SmallInput,
        )
    });
    let stored = serde_json::to_string(&full).unwrap_or_default();
    c.bench_function("window/decode + observe + evaluate + encode (as stored)", |b| {
        b.iter(|| {
            let mut w: MetricWindow = serde_json::from_str(black_box(&stored)).unwrap_or_default();
            w.observe(100, Some(0.5), 31);
            let fired = (evaluate_threshold(&w, &threshold), evaluate_zscore(&w, &zscore));
            (serde_json::to_string(&w).unwrap_or_default(), fired)
        })
    });
}

criterion_group!(benches, filters, matching_1000, windows);
criterion_main!(benches);
