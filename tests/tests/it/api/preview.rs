//! `POST …/automations/{id}/preview`: a dry run that explains itself and changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{CANARY, TEAM, World, assert_problem, team_path};

/// A webhook with a payload secret and a registry automation on `production` aliases.
async fn alias_automation(w: &World) -> String {
    w.secret("DEPLOY_KEY", CANARY).await;
    let webhook =
        w.webhook(json!({"name": "deploy", "url": "https://deploy.example.com/hook", "secret": "DEPLOY_KEY"})).await;
    w.automation(&json!({
        "name": "deploy on production",
        "scope": {"type": "registry", "registry": "models"},
        "event": {"type": "ADD_ARTIFACT_ALIAS", "alias_regex": "^production$"},
        "action": {"type": "webhook", "webhook_id": webhook["id"], "payload": {"v": "${artifact_version_string}", "key": "$DEPLOY_KEY"}}
    }))
    .await
}

fn alias_event(alias: &str) -> Value {
    json!({"id": "evt-preview", "type": "ADD_ARTIFACT_ALIAS", "team": TEAM, "project": "wandb-registry-models",
           "author": "alice", "artifact": {"collection": "churn-model", "version": "v7"}, "alias": alias})
}

fn preview_path(id: &str) -> String {
    team_path(&format!("automations/{id}/preview"))
}

per_backend! {
    async fn a_matching_event_shows_the_request_with_secrets_masked(backend) {
        let w = World::new(backend).await;
        let id = alias_automation(&w).await;
        let a = w.post(&preview_path(&id), &w.member, &json!({"event": alias_event("production")})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["matches"], true);
        assert_eq!(a.body["request"]["body"]["v"], "ml-team/wandb-registry-models/churn-model:v7");
        assert_eq!(a.body["request"]["body"]["key"], "***");
        assert!(a.body["request"]["headers"]["webhook-signature"].as_str().is_some_and(|s| s.starts_with("v1,")));
        assert!(!a.text.contains(CANARY));
    }
}

per_backend! {
    async fn a_preview_stores_no_execution_and_queues_nothing(backend) {
        let w = World::new(backend).await;
        let id = alias_automation(&w).await;
        w.post(&preview_path(&id), &w.admin, &json!({"event": alias_event("production")})).await;
        let history = w.get(&team_path(&format!("automations/{id}/executions")), &w.admin).await;
        assert_eq!(history.body["items"], json!([]));
        let queued = w.app.app.deliveries.receive(10, std::time::Duration::ZERO, None).await.unwrap();
        assert!(queued.is_empty());
    }
}

per_backend! {
    async fn a_non_matching_event_says_which_condition_failed(backend) {
        let w = World::new(backend).await;
        let id = alias_automation(&w).await;
        let a = w.post(&preview_path(&id), &w.member, &json!({"event": alias_event("staging")})).await;
        assert_eq!(a.body["matches"], false);
        assert!(a.body["reason"].as_str().unwrap().contains("staging"), "{}", a.text);
        assert_eq!(a.body["request"], Value::Null);
    }
}

per_backend! {
    async fn a_paused_automation_says_it_is_paused(backend) {
        let w = World::new(backend).await;
        let id = alias_automation(&w).await;
        w.patch(&team_path(&format!("automations/{id}")), &w.admin, &json!({"enabled": false})).await;
        let a = w.post(&preview_path(&id), &w.member, &json!({"event": alias_event("production")})).await;
        assert_eq!(a.body["matches"], false);
        assert!(a.body["reason"].as_str().unwrap().contains("paused"), "{}", a.text);
    }
}

per_backend! {
    async fn a_metric_preview_does_not_move_the_run_window(backend) {
        let w = World::new(backend).await;
        let id = w
            .automation(&json!({
                "name": "loss high", "scope": {"type": "project", "project": "llm"},
                "event": {"type": "RUN_METRIC", "metric": {"name": "loss", "agg": "MAX", "window": 1, "cmp": "$gt", "threshold": 1.0}},
                "action": {"type": "no_op"}
            }))
            .await;
        let row = json!({"id": "row-1", "type": "RUN_HISTORY", "team": TEAM, "project": "llm",
                         "run": {"id": "r1", "name": "run one"}, "history": {"step": 1, "values": {"loss": 5.0}}});
        for _ in 0..2 {
            let a = w.post(&preview_path(&id), &w.member, &json!({"event": row})).await;
            assert_eq!(a.body["matches"], true, "{}", a.text);
            assert!(a.body["reason"].as_str().unwrap().contains("no_op"), "{}", a.text);
        }
    }
}

per_backend! {
    async fn an_invalid_event_is_refused_with_its_path(backend) {
        let w = World::new(backend).await;
        let id = alias_automation(&w).await;
        let mut event = alias_event("production");
        event["artifact"]["version"] = json!(7);
        let a = w.post(&preview_path(&id), &w.member, &json!({"event": event})).await;
        assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(a.body["errors"][0]["field"], "event.artifact.version");
    }
}

per_backend! {
    async fn a_producer_may_not_preview(backend) {
        let w = World::new(backend).await;
        let id = alias_automation(&w).await;
        let a = w.post(&preview_path(&id), &w.producer, &json!({"event": alias_event("production")})).await;
        assert_problem(&a, StatusCode::FORBIDDEN);
    }
}
