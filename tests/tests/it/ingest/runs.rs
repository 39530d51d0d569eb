//! RUN_STATE events: states, CRASHED as FAILED, once per run and state, filters on the run.

use serde_json::json;

use super::support::*;

per_backend! {
    async fn a_crashed_run_fires_a_failed_state_automation(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx.automation(spec("failures", project("llm"), json!({"type": "RUN_STATE", "states": ["FAILED"]}))).await;
        ctx.ingest(run_state("e1", "r1", "baseline", "FINISHED")).await;
        ctx.ingest(run_state("e2", "r2", "baseline", "CRASHED")).await;
        let executions = ctx.executions(&auto).await;
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].event_id.as_str(), "e2");
        assert_eq!(executions[0].event["run"]["state"], "CRASHED");
        assert_eq!(ctx.jobs().await.len(), 1);
    }
}

per_backend! {
    async fn a_run_state_automation_fires_once_per_run_and_state(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("ends", project("llm"), json!({"type": "RUN_STATE", "states": ["FAILED", "FINISHED"]})))
            .await;
        ctx.ingest(run_state("e1", "r1", "baseline", "CRASHED")).await;
        ctx.ingest(run_state("e2", "r1", "baseline", "FAILED")).await;
        ctx.ingest(run_state("e3", "r1", "baseline", "FINISHED")).await;
        ctx.ingest(run_state("e4", "r2", "baseline", "FAILED")).await;
        let mut fired: Vec<String> = ctx.executions(&auto).await.into_iter().map(|e| e.event_id.to_string()).collect();
        fired.sort();
        assert_eq!(fired, ["e1", "e3", "e4"]);
    }
}

per_backend! {
    async fn a_filter_on_the_run_name_selects_runs(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec(
                "ablations",
                project("llm"),
                json!({"type": "RUN_STATE", "states": ["FINISHED"], "filter": {"run.name": {"$regex": "^ablation-"}}}),
            ))
            .await;
        ctx.ingest(run_state("e1", "r1", "baseline", "FINISHED")).await;
        ctx.ingest(run_state("e2", "r2", "ablation-lr", "FINISHED")).await;
        let executions = ctx.executions(&auto).await;
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].event_id.as_str(), "e2");
    }
}

per_backend! {
    async fn an_automation_of_another_project_does_not_see_the_run(backend) {
        let ctx = Ctx::new(backend).await;
        let auto =
            ctx.automation(spec("other", project("vision"), json!({"type": "RUN_STATE", "states": ["FAILED"]}))).await;
        ctx.ingest(run_state("e1", "r1", "baseline", "FAILED")).await;
        assert!(ctx.executions(&auto).await.is_empty());
    }
}
