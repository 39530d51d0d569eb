//! Messages that can never be processed go to the events DLQ at once, with their reason.

use serde_json::json;

use super::support::*;

per_backend! {
    async fn a_poison_message_is_dead_lettered_with_its_reason_while_the_rest_of_the_batch_succeeds(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx.automation(spec("created", project("llm"), json!({"type": "CREATE_ARTIFACT"}))).await;
        let mut wrong = artifact_event("e2", "CREATE_ARTIFACT", "llm", "ckpt");
        wrong["artifact"]["version"] = json!(7);
        let bodies = [
            artifact_event("e1", "CREATE_ARTIFACT", "llm", "ckpt").to_string(),
            "{not json".to_owned(),
            wrong.to_string(),
            artifact_event("e3", "CREATE_ARTIFACT", "llm", "ckpt").to_string(),
        ];
        send_raw(ctx.app(), &bodies).await;
        ctx.drain_events().await;

        assert_eq!(ctx.executions(&auto).await.len(), 2);
        let mut dead = drain(ctx.app().events_dlq.as_ref()).await;
        dead.sort_by(|a, b| a.body.cmp(&b.body));
        assert_eq!(dead.len(), 2);
        assert_eq!(dead[0].body, bodies[2]);
        assert!(dead[0].attributes["reason"].contains("artifact.version"), "{:?}", dead[0].attributes);
        assert_eq!(dead[1].body, "{not json");
        assert!(dead[1].attributes["reason"].starts_with("not JSON"), "{:?}", dead[1].attributes);
        assert!(drain(ctx.app().events.as_ref()).await.is_empty(), "nothing is left to retry");
    }
}
