//! `POST /v1/events`: batches, duplicates, precise 400s, who may post.

use automations::domain::team::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::*;

fn created(id: &str) -> Value {
    artifact_event(id, "CREATE_ARTIFACT", "llm", "ckpt")
}

per_backend! {
    async fn a_batch_is_queued_once_per_id_and_repeats_count_as_duplicates(backend) {
        let ctx = Ctx::new(backend).await;
        let answer = ctx.t.post("/v1/events", &ctx.producer, &json!([created("e1"), created("e2"), created("e1")])).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        assert_eq!(answer.body, json!({"accepted": 2, "duplicates": 1}));
        let mut queued: Vec<String> = drain(ctx.app().events.as_ref())
            .await
            .into_iter()
            .map(|m| serde_json::from_str::<Value>(&m.body).unwrap()["id"].as_str().unwrap().to_owned())
            .collect();
        queued.sort();
        assert_eq!(queued, ["e1", "e2"]);
    }
}

per_backend! {
    async fn events_already_processed_count_as_duplicates_and_are_not_queued_again(backend) {
        let ctx = Ctx::new(backend).await;
        ctx.t.post("/v1/events", &ctx.producer, &json!([created("e1")])).await;
        ctx.drain_events().await;
        let answer = ctx.t.post("/v1/events", &ctx.producer, &json!([created("e1"), created("e3")])).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        assert_eq!(answer.body, json!({"accepted": 1, "duplicates": 1}));
        assert_eq!(drain(ctx.app().events.as_ref()).await.len(), 1);
    }
}

per_backend! {
    async fn a_single_event_object_is_queued_with_its_defaults_filled_in(backend) {
        let ctx = Ctx::new(backend).await;
        let mut event = created("e1");
        let object = event.as_object_mut().unwrap();
        object.remove("time");
        object.remove("author");
        object.insert("producer_extra".into(), json!(true));
        let answer = ctx.t.post("/v1/events", &ctx.admin, &event).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        assert_eq!(answer.body, json!({"accepted": 1, "duplicates": 0}));
        let queued = drain(ctx.app().events.as_ref()).await;
        let doc: Value = serde_json::from_str(&queued[0].body).unwrap();
        assert!(doc["time"].as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()), "{doc}");
        assert_eq!(doc["author"], "");
        assert_eq!(doc["producer_extra"], true);
    }
}

per_backend! {
    async fn an_invalid_event_rejects_the_whole_batch_naming_its_index_and_field(backend) {
        let ctx = Ctx::new(backend).await;
        let mut bad = created("e2");
        bad["artifact"]["version"] = json!(7);
        let mut no_alias = alias_event("e3", "llm", "ckpt", "x");
        no_alias.as_object_mut().unwrap().remove("alias");
        let answer = ctx.t.post("/v1/events", &ctx.producer, &json!([created("e1"), bad, no_alias])).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.content_type, "application/problem+json");
        let fields: Vec<&str> = answer.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["[1].artifact.version", "[2].alias"]);
        assert!(drain(ctx.app().events.as_ref()).await.is_empty());
    }
}

per_backend! {
    async fn a_body_that_is_not_json_is_a_bad_request(backend) {
        let ctx = Ctx::new(backend).await;
        let answer = ctx
            .t
            .client
            .post(format!("{}/v1/events", ctx.t.base))
            .bearer_auth(&ctx.producer)
            .header("content-type", "application/json")
            .body("[{\"id\":")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    }
}

per_backend! {
    async fn more_than_500_events_are_refused(backend) {
        let ctx = Ctx::new(backend).await;
        let batch: Vec<Value> = (0..501).map(|i| created(&format!("e{i}"))).collect();
        let answer = ctx.t.post("/v1/events", &ctx.producer, &Value::Array(batch)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert!(drain(ctx.app().events.as_ref()).await.is_empty());
    }
}

per_backend! {
    async fn a_producer_of_another_team_is_refused(backend) {
        let ctx = Ctx::new(backend).await;
        ctx.t.seed_team("vision").await;
        let other = ctx.t.seed_user("vision-pipeline").await;
        ctx.t.seed_member("vision", "vision-pipeline", Role::Producer, &[]).await;
        let mut theirs = created("v1");
        theirs["team"] = json!("vision");
        let answer = ctx.t.post("/v1/events", &other, &json!([theirs, created("e1")])).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
        assert_eq!(answer.content_type, "application/problem+json");
        assert!(drain(ctx.app().events.as_ref()).await.is_empty(), "nothing of a refused batch is queued");
    }
}

per_backend! {
    async fn a_member_without_the_producer_role_may_not_post_events(backend) {
        let ctx = Ctx::new(backend).await;
        let reader = ctx.t.seed_user("bob").await;
        ctx.t.seed_member(TEAM, "bob", Role::Member, &[]).await;
        let answer = ctx.t.post("/v1/events", &reader, &created("e1")).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text);
    }
}

per_backend! {
    async fn posting_events_needs_a_token(backend) {
        let ctx = Ctx::new(backend).await;
        let answer = ctx.t.call(reqwest::Method::POST, "/v1/events", None, Some(&created("e1"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
}

per_backend! {
    async fn posted_events_fire_their_automations(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx.automation(spec("created", project("llm"), json!({"type": "CREATE_ARTIFACT"}))).await;
        let answer = ctx.t.post("/v1/events", &ctx.producer, &json!([created("e1"), created("e2")])).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        ctx.drain_events().await;
        assert_eq!(ctx.executions(&auto).await.len(), 2);
        assert_eq!(ctx.jobs().await.len(), 2);
    }
}

per_backend! {
    async fn the_openapi_document_describes_posting_events_and_its_problems(backend) {
        let ctx = Ctx::new(backend).await;
        let doc = ctx.t.get("/v1/openapi.json", &ctx.admin).await.body;
        let post = &doc["paths"]["/v1/events"]["post"];
        assert!(post["responses"]["202"].is_object(), "{post}");
        for status in ["400", "401", "403", "404", "413"] {
            assert!(post["responses"][status]["content"]["application/problem+json"].is_object(), "{status}: {post}");
        }
    }
}
