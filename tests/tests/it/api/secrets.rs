//! Team secrets: metadata out, values only into the store.

use reqwest::StatusCode;
use serde_json::json;

use super::support::*;

per_backend! {
    async fn creating_a_secret_answers_its_metadata_only(backend) {
        let w = World::new(backend).await;
        let a = w.post(&team_path("secrets"), &w.admin, &json!({"name": "GITHUB_TOKEN", "value": CANARY})).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        let mut keys: Vec<&String> = a.body.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, vec!["created_at", "name", "updated_at"]);
        assert!(!a.text.contains(CANARY));
        assert_eq!(w.stored_secret(&format!("{TEAM}/GITHUB_TOKEN")).await.as_deref(), Some(CANARY));
    }
}

per_backend! {
    async fn the_secret_list_shows_names_and_never_values(backend) {
        let w = World::new(backend).await;
        w.secret("B_TOKEN", CANARY).await;
        w.secret("A_TOKEN", CANARY).await;
        let a = w.get(&team_path("secrets"), &w.member).await;
        assert_eq!(names(&a, "name"), vec!["A_TOKEN", "B_TOKEN"]);
        assert!(!a.text.contains(CANARY));
    }
}

per_backend! {
    async fn a_taken_secret_name_is_a_conflict_and_keeps_the_old_value(backend) {
        let w = World::new(backend).await;
        w.secret("TOKEN", "first").await;
        let a = w.post(&team_path("secrets"), &w.admin, &json!({"name": "TOKEN", "value": "second"})).await;
        assert_problem(&a, StatusCode::CONFLICT);
        assert_eq!(w.stored_secret(&format!("{TEAM}/TOKEN")).await.as_deref(), Some("first"));
    }
}

per_backend! {
    async fn an_invalid_secret_name_is_refused_naming_the_field(backend) {
        let w = World::new(backend).await;
        assert_invalid(&w.post(&team_path("secrets"), &w.admin, &json!({"name": "has-dash", "value": "v"})).await, "name");
    }
}

per_backend! {
    async fn an_empty_or_oversized_secret_value_is_refused_naming_the_field(backend) {
        let w = World::new(backend).await;
        assert_invalid(&w.post(&team_path("secrets"), &w.admin, &json!({"name": "EMPTY", "value": ""})).await, "value");
        let big = "x".repeat(64 * 1024 + 1);
        assert_invalid(&w.post(&team_path("secrets"), &w.admin, &json!({"name": "BIG", "value": big})).await, "value");
    }
}

per_backend! {
    async fn a_secret_body_with_an_unknown_field_is_a_bad_request(backend) {
        let w = World::new(backend).await;
        let a = w.post(&team_path("secrets"), &w.admin, &json!({"name": "T", "value": "v", "note": "x"})).await;
        assert_problem(&a, StatusCode::BAD_REQUEST);
    }
}

per_backend! {
    async fn rotating_a_secret_replaces_its_value_and_moves_updated_at(backend) {
        let w = World::new(backend).await;
        let created = w.post(&team_path("secrets"), &w.admin, &json!({"name": "TOKEN", "value": "old"})).await;
        let a = w.put(&team_path("secrets/TOKEN"), &w.admin, &json!({"value": "new"})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["created_at"], created.body["created_at"]);
        let (before, after) = (created.body["updated_at"].as_str().unwrap(), a.body["updated_at"].as_str().unwrap());
        assert!(after.parse::<jiff::Timestamp>().unwrap() >= before.parse::<jiff::Timestamp>().unwrap());
        assert!(!a.text.contains("new"));
        assert_eq!(w.stored_secret(&format!("{TEAM}/TOKEN")).await.as_deref(), Some("new"));
    }
}

per_backend! {
    async fn rotating_an_unknown_secret_is_not_found(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.put(&team_path("secrets/NOPE"), &w.admin, &json!({"value": "v"})).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn deleting_a_secret_removes_its_metadata_and_value(backend) {
        let w = World::new(backend).await;
        w.secret("TOKEN", CANARY).await;
        assert_eq!(w.delete(&team_path("secrets/TOKEN"), &w.admin).await.status, StatusCode::NO_CONTENT);
        assert!(names(&w.get(&team_path("secrets"), &w.admin).await, "name").is_empty());
        assert_eq!(w.stored_secret(&format!("{TEAM}/TOKEN")).await, None);
        assert_problem(&w.delete(&team_path("secrets/TOKEN"), &w.admin).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn a_deleted_secret_name_can_be_used_again_at_once(backend) {
        let w = World::new(backend).await;
        w.secret("TOKEN", "one").await;
        w.delete(&team_path("secrets/TOKEN"), &w.admin).await;
        w.secret("TOKEN", "two").await;
        assert_eq!(w.stored_secret(&format!("{TEAM}/TOKEN")).await.as_deref(), Some("two"));
    }
}

per_backend! {
    async fn a_secret_used_as_a_webhook_access_token_cannot_be_deleted(backend) {
        let w = World::new(backend).await;
        w.secret("TOKEN", "v").await;
        w.webhook(json!({"name": "deploy", "url": "https://example.com/h", "access_token_secret": "TOKEN"})).await;
        assert_problem(&w.delete(&team_path("secrets/TOKEN"), &w.admin).await, StatusCode::CONFLICT);
    }
}

per_backend! {
    async fn a_secret_used_as_a_webhook_payload_secret_cannot_be_deleted(backend) {
        let w = World::new(backend).await;
        w.secret("SIGNING", "v").await;
        w.webhook(json!({"name": "deploy", "url": "https://example.com/h", "secret": "SIGNING"})).await;
        assert_problem(&w.delete(&team_path("secrets/SIGNING"), &w.admin).await, StatusCode::CONFLICT);
    }
}

per_backend! {
    async fn members_read_secret_metadata_but_cannot_change_secrets(backend) {
        let w = World::new(backend).await;
        w.secret("TOKEN", "v").await;
        assert_eq!(w.get(&team_path("secrets"), &w.member).await.status, StatusCode::OK);
        let body = json!({"name": "OTHER", "value": "v"});
        assert_problem(&w.post(&team_path("secrets"), &w.member, &body).await, StatusCode::FORBIDDEN);
        assert_problem(&w.put(&team_path("secrets/TOKEN"), &w.member, &json!({"value": "x"})).await, StatusCode::FORBIDDEN);
        assert_problem(&w.delete(&team_path("secrets/TOKEN"), &w.member).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn producers_cannot_read_secret_metadata(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.get(&team_path("secrets"), &w.producer).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn outsiders_get_not_found_for_every_secret_route(backend) {
        let w = World::new(backend).await;
        w.secret("TOKEN", "v").await;
        assert_problem(&w.get(&team_path("secrets"), &w.outsider).await, StatusCode::NOT_FOUND);
        let body = json!({"name": "X", "value": "v"});
        assert_problem(&w.post(&team_path("secrets"), &w.outsider, &body).await, StatusCode::NOT_FOUND);
        assert_problem(&w.put(&team_path("secrets/TOKEN"), &w.outsider, &json!({"value": "x"})).await, StatusCode::NOT_FOUND);
        assert_problem(&w.delete(&team_path("secrets/TOKEN"), &w.outsider).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn the_secret_list_pages_with_limit_and_cursor(backend) {
        let w = World::new(backend).await;
        for i in 0..5 {
            w.secret(&format!("S{i}"), "v").await;
        }
        let (all, pages) = collect_pages(&w, &team_path("secrets"), &w.admin, 2, "name").await;
        assert_eq!(all, vec!["S0", "S1", "S2", "S3", "S4"]);
        assert!(pages >= 3);
    }
}
