//! Artifact events: alias and tag regexes, collections and registries, filters, no_op.

use automations::app::jobs::DeliveryTask;
use automations::domain::execution::ExecutionStatus;
use serde_json::json;

use super::support::*;

const REGISTRY: &str = "wandb-registry-models";

fn collection(c: &str) -> serde_json::Value {
    json!({"type": "collection", "registry": "models", "collection": c})
}

per_backend! {
    async fn an_alias_matching_the_regex_fires_one_execution_and_one_delivery_job(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("promote", collection("churn"), json!({"type": "ADD_ARTIFACT_ALIAS", "alias_regex": "^production$"})))
            .await;
        ctx.ingest(alias_event("e1", REGISTRY, "churn", "production")).await;

        let executions = ctx.executions(&auto).await;
        assert_eq!(executions.len(), 1);
        let ex = &executions[0];
        assert_eq!(ex.status, ExecutionStatus::Pending);
        assert_eq!(ex.event_type, "ADD_ARTIFACT_ALIAS");
        assert_eq!(ex.event_id.as_str(), "e1");
        assert_eq!(ex.event["alias"], "production");
        assert_eq!(ex.attempt_count, 0);
        assert_eq!(ex.metric, None);
        assert_eq!(
            ctx.jobs().await,
            vec![DeliveryTask::Deliver { team: team(), execution_id: ex.id.clone(), attempt: 1 }]
        );
    }
}

per_backend! {
    async fn an_alias_that_does_not_match_the_regex_fires_nothing(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("promote", collection("churn"), json!({"type": "ADD_ARTIFACT_ALIAS", "alias_regex": "^staging$"})))
            .await;
        ctx.ingest(alias_event("e1", REGISTRY, "churn", "production")).await;
        assert!(ctx.executions(&auto).await.is_empty());
        assert!(ctx.jobs().await.is_empty());
    }
}

per_backend! {
    async fn a_tag_matching_the_tag_regex_fires_and_another_tag_does_not(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx.automation(spec("tagged", project("llm"), json!({"type": "ADD_ARTIFACT_TAG", "tag_regex": "^ready-"}))).await;
        let tag = |id: &str, t: &str| {
            let mut e = artifact_event(id, "ADD_ARTIFACT_TAG", "llm", "ckpt");
            e["tag"] = json!(t);
            e
        };
        ctx.ingest(tag("e1", "draft")).await;
        ctx.ingest(tag("e2", "ready-for-eval")).await;
        let executions = ctx.executions(&auto).await;
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].event_id.as_str(), "e2");
    }
}

per_backend! {
    async fn a_link_to_the_watched_collection_fires_and_a_link_to_another_collection_does_not(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx.automation(spec("linked", collection("churn"), json!({"type": "LINK_ARTIFACT"}))).await;
        ctx.ingest(artifact_event("e1", "LINK_ARTIFACT", REGISTRY, "fraud")).await;
        ctx.ingest(artifact_event("e2", "LINK_ARTIFACT", REGISTRY, "churn")).await;
        let executions = ctx.executions(&auto).await;
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].event_id.as_str(), "e2");
        assert_eq!(executions[0].event_type, "LINK_ARTIFACT");
    }
}

per_backend! {
    async fn a_registry_scope_sees_collections_created_after_the_automation(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("any link", json!({"type": "registry", "registry": "models"}), json!({"type": "LINK_ARTIFACT"})))
            .await;
        ctx.ingest(artifact_event("e1", "LINK_ARTIFACT", REGISTRY, "a-brand-new-collection")).await;
        ctx.ingest(artifact_event("e2", "LINK_ARTIFACT", "wandb-registry-datasets", "churn")).await;
        let executions = ctx.executions(&auto).await;
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].event_id.as_str(), "e1");
    }
}

per_backend! {
    async fn a_filter_on_artifact_metadata_selects_versions(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec(
                "good models",
                project("llm"),
                json!({"type": "CREATE_ARTIFACT", "filter": {"artifact.metadata.auc": {"$gte": 0.9}}}),
            ))
            .await;
        let mut weak = artifact_event("e1", "CREATE_ARTIFACT", "llm", "ckpt");
        weak["artifact"]["metadata"]["auc"] = json!(0.7);
        ctx.ingest(weak).await;
        ctx.ingest(artifact_event("e2", "CREATE_ARTIFACT", "llm", "ckpt")).await;
        let executions = ctx.executions(&auto).await;
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].event_id.as_str(), "e2");
    }
}

per_backend! {
    async fn a_disabled_automation_is_ignored(backend) {
        let ctx = Ctx::new(backend).await;
        let mut paused = spec("paused", project("llm"), json!({"type": "CREATE_ARTIFACT"}));
        paused["enabled"] = json!(false);
        let auto = ctx.automation(paused).await;
        ctx.ingest(artifact_event("e1", "CREATE_ARTIFACT", "llm", "ckpt")).await;
        assert!(ctx.executions(&auto).await.is_empty());
        assert!(ctx.jobs().await.is_empty());
    }
}

per_backend! {
    async fn a_no_op_action_records_a_skipped_execution_and_sends_no_job(backend) {
        let ctx = Ctx::new(backend).await;
        let mut try_out = spec("try out", project("llm"), json!({"type": "CREATE_ARTIFACT"}));
        try_out["action"] = json!({"type": "no_op"});
        let auto = ctx.automation(try_out).await;
        ctx.ingest(artifact_event("e1", "CREATE_ARTIFACT", "llm", "ckpt")).await;
        let executions = ctx.executions(&auto).await;
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].status, ExecutionStatus::Skipped);
        assert_eq!(executions[0].reason.as_deref(), Some("no_op"));
        assert!(ctx.jobs().await.is_empty());
    }
}

per_backend! {
    async fn an_event_received_twice_fires_once(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx.automation(spec("created", project("llm"), json!({"type": "CREATE_ARTIFACT"}))).await;
        ctx.ingest(artifact_event("e1", "CREATE_ARTIFACT", "llm", "ckpt")).await;
        ctx.ingest(artifact_event("e1", "CREATE_ARTIFACT", "llm", "ckpt")).await;
        assert_eq!(ctx.executions(&auto).await.len(), 1);
        assert_eq!(ctx.jobs().await.len(), 1);
    }
}

per_backend! {
    async fn each_artifact_event_fires_its_own_execution(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx.automation(spec("created", project("llm"), json!({"type": "CREATE_ARTIFACT"}))).await;
        ctx.ingest(artifact_event("e1", "CREATE_ARTIFACT", "llm", "ckpt")).await;
        ctx.ingest(artifact_event("e2", "CREATE_ARTIFACT", "llm", "ckpt")).await;
        assert_eq!(ctx.executions(&auto).await.len(), 2);
        assert_eq!(ctx.jobs().await.len(), 2);
    }
}
