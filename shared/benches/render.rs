//! Rendering and signing: the per-delivery CPU work besides the network.

use std::hint::black_box;

use automations::delivery::signature::{SigningSecret, standard_webhooks_signature, wandb_signature};
use automations::domain::automation::Severity;
use automations::render::slack::{SlackMessage, build_message};
use automations::render::template::{SecretNames, Template};
use automations::render::variables::{RenderContext, Variables};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn event() -> serde_json::Value {
    json!({"v":1,"id":"evt_01J","type":"ADD_ARTIFACT_ALIAS","time":"2026-11-23T10:00:00Z","team":"ml-team",
           "project":"wandb-registry-models","author":"alice",
           "artifact":{"collection":"churn-model","version":"v7","type":"model","aliases":["latest","production"],
                       "tags":["xgb"],"metadata":{"auc":0.91}},"alias":"production"})
}

fn github_payload() -> serde_json::Value {
    json!({"event_type":"BUILD_AND_DEPLOY","client_payload":{"event_author":"${event_author}",
           "artifact_version":"${artifact_version}","artifact_version_string":"${artifact_version_string}",
           "artifact_collection_name":"${artifact_collection_name}","project_name":"${project_name}",
           "entity_name":"${entity_name}","auc":"${artifact_metadata.auc}","key":"$DEPLOY_KEY"}})
}

fn benches(c: &mut Criterion) {
    let event = event();
    let ctx = RenderContext {
        automation_name: "deploy",
        event_type: "ADD_ARTIFACT_ALIAS",
        metric_name: None,
        metric_value: None,
    };
    let template = match Template::compile(
        &github_payload(),
        &SecretNames { secret: Some("DEPLOY_KEY"), has_access_token: false },
    ) {
        Ok(t) => t,
        Err(e) => panic!("bench payload does not compile: {e:?}"),
    };
    c.bench_function("variables_from_event", |b| b.iter(|| Variables::from_event(black_box(&event), &ctx)));
    let vars = Variables::from_event(&event, &ctx);
    let secrets = |name: &str| (name == "DEPLOY_KEY").then(|| "s3cr3t".to_owned());
    c.bench_function("render_github_payload", |b| {
        b.iter(|| serde_json::to_vec(&template.render(black_box(&vars), &secrets)))
    });
    let body = serde_json::to_vec(&template.render(&vars, &secrets)).unwrap_or_default();
    let signing = SigningSecret::generate();
    c.bench_function("sign_standard_webhooks", |b| {
        b.iter(|| standard_webhooks_signature(&signing, "ex_0123", 1_800_000_000, black_box(&body)))
    });
    c.bench_function("sign_wandb", |b| b.iter(|| wandb_signature(b"s3cr3t", black_box(&body))));
    let message = SlackMessage {
        title: "Loss diverged",
        message: "run *ablation-3* loss 4.2 over the last 5 steps",
        severity: Severity::Error,
        team: "ml-team",
        project: "llm-pretrain",
        event_type: "RUN_METRIC",
        author: "alice",
        links: vec![("View run".into(), "https://wandb.example/run/1".into())],
    };
    c.bench_function("slack_block_kit", |b| b.iter(|| build_message(black_box(&message))));
}

criterion_group!(render, benches);
criterion_main!(render);
