//! Automations: save-time validation with JSON paths, roles and registry admins, PUT/PATCH,
//! scope filters and paging.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::*;

fn automation_path(id: &str) -> String {
    team_path(&format!("automations/{id}"))
}

fn metric_automation(name: &str) -> Value {
    json!({
        "name": name, "description": "loss went up",
        "scope": {"type": "project", "project": "llm-pretrain"},
        "event": {"type": "RUN_METRIC", "filter": {"run.name": {"$regex": "^ablation-"}},
                  "metric": {"name": "loss", "agg": "AVERAGE", "window": 5, "cmp": "$gt", "threshold": 4.0}},
        "action": {"type": "no_op"}
    })
}

per_backend! {
    async fn creating_an_automation_answers_it_with_id_author_times_and_defaults(backend) {
        let w = World::new(backend).await;
        let a = w.automation_as(&w.admin, &metric_automation("loss diverged")).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert!(a.body["id"].as_str().unwrap().starts_with("au_"));
        assert_eq!(a.body["created_by"], "alice");
        assert!(a.body["created_at"].is_string() && a.body["updated_at"].is_string());
        assert_eq!(a.body["enabled"], true);
        assert_eq!(a.body["cooldown_seconds"], 86400);
        assert_eq!(a.body["event"]["filter"], json!({"run.name": {"$regex": "^ablation-"}}));
        assert_eq!(w.get(&automation_path(&id_of(&a.body)), &w.member).await.body, a.body);
    }
}

per_backend! {
    async fn a_taken_automation_name_is_a_conflict(backend) {
        let w = World::new(backend).await;
        w.automation(&metric_automation("loss diverged")).await;
        assert_problem(&w.automation_as(&w.admin, &metric_automation("loss diverged")).await, StatusCode::CONFLICT);
    }
}

per_backend! {
    async fn an_invalid_filter_regex_is_refused_at_its_full_path(backend) {
        let w = World::new(backend).await;
        let mut spec = metric_automation("x");
        spec["event"]["filter"] = json!({"run.name": {"$regex": "(unclosed"}});
        assert_invalid(&w.automation_as(&w.admin, &spec).await, "event.filter.run.name.$regex");
    }
}

per_backend! {
    async fn an_unknown_filter_operator_is_refused_at_its_path(backend) {
        let w = World::new(backend).await;
        let mut spec = metric_automation("x");
        spec["event"]["filter"] = json!({"$and": [{"author": {"$bogus": 1}}]});
        let a = w.automation_as(&w.admin, &spec).await;
        assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(fields(&a).iter().all(|f| f.starts_with("event.filter.$and[0]")), "{}", a.text);
    }
}

per_backend! {
    async fn an_invalid_alias_regex_is_refused_naming_the_field(backend) {
        let w = World::new(backend).await;
        let mut spec = artifact_automation("x", json!({"type": "registry", "registry": "models"}));
        spec["event"]["alias_regex"] = json!("[");
        assert_invalid(&w.automation_as(&w.admin, &spec).await, "event.alias_regex");
    }
}

per_backend! {
    async fn an_invalid_tag_regex_is_refused_naming_the_field(backend) {
        let w = World::new(backend).await;
        let spec = json!({"name": "x", "scope": {"type": "project", "project": "p"},
                          "event": {"type": "ADD_ARTIFACT_TAG", "tag_regex": "a{99999999}"}, "action": {"type": "no_op"}});
        assert_invalid(&w.automation_as(&w.admin, &spec).await, "event.tag_regex");
    }
}

per_backend! {
    async fn an_unknown_payload_variable_is_refused_at_its_path(backend) {
        let w = World::new(backend).await;
        let id = w.webhook_to("deploy", "https://example.com/h").await;
        let mut spec = metric_automation("x");
        spec["action"] = json!({"type": "webhook", "webhook_id": id, "payload": {"text": "${run_nme}"}});
        assert_invalid(&w.automation_as(&w.admin, &spec).await, "action.payload.text");
    }
}

per_backend! {
    async fn a_payload_may_use_only_the_webhooks_own_secrets(backend) {
        let w = World::new(backend).await;
        w.secret("HMAC_KEY", "v").await;
        let id = id_of(&w.webhook(json!({"name": "deploy", "url": "https://example.com/h", "secret": "HMAC_KEY"})).await);
        let mut spec = metric_automation("x");
        spec["action"] = json!({"type": "webhook", "webhook_id": id, "payload": {"k": "${HMAC_KEY}", "auth": ["${ACCESS_TOKEN}"]}});
        let a = w.automation_as(&w.admin, &spec).await;
        assert_eq!(fields(&a), vec!["action.payload.auth[0]"], "{}", a.text);
    }
}

per_backend! {
    async fn a_webhook_of_another_team_or_none_is_refused_naming_the_field(backend) {
        let w = World::new(backend).await;
        let mut spec = metric_automation("x");
        spec["action"] = json!({"type": "webhook", "webhook_id": "wh_01JAAAAAAAAAAAAAAAAAAAAAAA"});
        assert_invalid(&w.automation_as(&w.admin, &spec).await, "action.webhook_id");
        let theirs = w.post("/v1/teams/other-team/webhooks", &w.outsider, &json!({"name": "x", "url": "https://example.com"})).await;
        spec["action"]["webhook_id"] = theirs.body["id"].clone();
        assert_invalid(&w.automation_as(&w.admin, &spec).await, "action.webhook_id");
    }
}

per_backend! {
    async fn an_unknown_slack_integration_is_refused_naming_the_field(backend) {
        let w = World::new(backend).await;
        let mut spec = metric_automation("x");
        spec["action"] = json!({"type": "slack", "integration_id": "si_01JAAAAAAAAAAAAAAAAAAAAAAA", "title": "t"});
        assert_invalid(&w.automation_as(&w.admin, &spec).await, "action.integration_id");
    }
}

per_backend! {
    async fn slack_title_and_message_templates_are_checked(backend) {
        let w = World::new(backend).await;
        let id = w.slack_integration("alerts").await;
        let mut spec = metric_automation("x");
        spec["action"] = json!({"type": "slack", "integration_id": id, "title": "${nope}", "message": "${ACCESS_TOKEN}"});
        let a = w.automation_as(&w.admin, &spec).await;
        assert_invalid(&a, "action.title");
        assert_invalid(&a, "action.message");
    }
}

per_backend! {
    async fn structural_faults_of_the_spec_name_their_fields(backend) {
        let w = World::new(backend).await;
        let mut spec = metric_automation("x");
        spec["scope"] = json!({"type": "registry", "registry": "models"});
        spec["cooldown_seconds"] = json!(400 * 86400);
        let a = w.automation_as(&w.admin, &spec).await;
        assert_invalid(&a, "event.type");
        assert_invalid(&a, "cooldown_seconds");
        let mut spec = metric_automation("x");
        spec["event"]["metric"]["window"] = json!(0);
        assert_invalid(&w.automation_as(&w.admin, &spec).await, "event.metric.window");
    }
}

per_backend! {
    async fn a_wrongly_typed_field_is_invalid_at_its_path(backend) {
        let w = World::new(backend).await;
        let mut spec = metric_automation("x");
        spec["enabled"] = json!("yes");
        assert_invalid(&w.automation_as(&w.admin, &spec).await, "enabled");
    }
}

per_backend! {
    async fn an_unknown_field_in_a_spec_is_a_bad_request(backend) {
        let w = World::new(backend).await;
        let mut spec = metric_automation("x");
        spec["event"]["colour"] = json!("red");
        assert_problem(&w.automation_as(&w.admin, &spec).await, StatusCode::BAD_REQUEST);
    }
}

per_backend! {
    async fn put_replaces_the_spec_and_ignores_read_only_fields(backend) {
        let w = World::new(backend).await;
        let created = w.automation_as(&w.admin, &metric_automation("loss diverged")).await.body;
        let id = id_of(&created);
        let mut replacement = no_op_automation("run failed", "llm-pretrain");
        replacement["id"] = json!("au_01JZZZZZZZZZZZZZZZZZZZZZZZ");
        replacement["created_by"] = json!("mallory");
        replacement["created_at"] = json!("2000-01-01T00:00:00Z");
        let a = w.put(&automation_path(&id), &w.admin, &replacement).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["id"], json!(id));
        assert_eq!(a.body["name"], "run failed");
        assert_eq!(a.body["event"]["type"], "RUN_STATE");
        assert_eq!(a.body["description"], "");
        assert_eq!(a.body["created_by"], "alice");
        assert_eq!(a.body["created_at"], created["created_at"]);
        assert_eq!(w.get(&automation_path(&id), &w.admin).await.body, a.body);
    }
}

per_backend! {
    async fn put_to_a_name_another_automation_has_is_a_conflict(backend) {
        let w = World::new(backend).await;
        w.automation(&no_op_automation("first", "p")).await;
        let id = w.automation(&no_op_automation("second", "p")).await;
        assert_problem(&w.put(&automation_path(&id), &w.admin, &no_op_automation("first", "p")).await, StatusCode::CONFLICT);
    }
}

per_backend! {
    async fn patch_enabled_false_pauses_and_keeps_everything_else(backend) {
        let w = World::new(backend).await;
        let created = w.automation_as(&w.admin, &metric_automation("loss diverged")).await.body;
        let a = w.patch(&automation_path(&id_of(&created)), &w.admin, &json!({"enabled": false})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["enabled"], false);
        let mut expected = created.clone();
        expected["enabled"] = json!(false);
        expected["updated_at"] = a.body["updated_at"].clone();
        assert_eq!(a.body, expected);
    }
}

per_backend! {
    async fn patch_null_removes_an_optional_field(backend) {
        let w = World::new(backend).await;
        let id = w.automation(&metric_automation("loss diverged")).await;
        let a = w.patch(&automation_path(&id), &w.admin, &json!({"event": {"filter": null}, "description": null})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert!(a.body["event"].get("filter").is_none(), "{}", a.text);
        assert_eq!(a.body["event"]["metric"]["name"], "loss");
        assert_eq!(a.body["description"], "");
    }
}

per_backend! {
    async fn a_patched_automation_is_validated_as_a_whole(backend) {
        let w = World::new(backend).await;
        let id = w.automation(&metric_automation("loss diverged")).await;
        let a = w.patch(&automation_path(&id), &w.admin, &json!({"event": {"filter": {"run.name": {"$regex": "("}}}})).await;
        assert_invalid(&a, "event.filter.run.name.$regex");
        let a = w.patch(&automation_path(&id), &w.admin, &json!({"event": {"type": "RUN_STATE", "states": ["FAILED"]}})).await;
        assert_invalid(&a, "event.metric");
        let a = w.patch(&automation_path(&id), &w.admin, &json!({"name": null})).await;
        assert_invalid(&a, "name");
    }
}

per_backend! {
    async fn a_patch_with_an_unknown_field_is_a_bad_request(backend) {
        let w = World::new(backend).await;
        let id = w.automation(&metric_automation("loss diverged")).await;
        assert_problem(&w.patch(&automation_path(&id), &w.admin, &json!({"colour": "red"})).await, StatusCode::BAD_REQUEST);
    }
}

per_backend! {
    async fn deleting_an_automation_answers_no_content_and_frees_its_name(backend) {
        let w = World::new(backend).await;
        let id = w.automation(&metric_automation("loss diverged")).await;
        assert_eq!(w.delete(&automation_path(&id), &w.admin).await.status, StatusCode::NO_CONTENT);
        assert_problem(&w.get(&automation_path(&id), &w.admin).await, StatusCode::NOT_FOUND);
        assert_problem(&w.delete(&automation_path(&id), &w.admin).await, StatusCode::NOT_FOUND);
        w.automation(&metric_automation("loss diverged")).await;
    }
}

per_backend! {
    async fn the_project_filter_lists_the_automations_that_see_the_project(backend) {
        let w = World::new(backend).await;
        w.automation(&no_op_automation("llm one", "llm")).await;
        w.automation(&no_op_automation("vision one", "vision")).await;
        w.automation(&artifact_automation("registry one", json!({"type": "registry", "registry": "models"}))).await;
        let a = w.get(&format!("{}?project=llm", team_path("automations")), &w.member).await;
        assert_eq!(names(&a, "name"), vec!["llm one"]);
        let a = w.get(&format!("{}?project=wandb-registry-models", team_path("automations")), &w.member).await;
        assert_eq!(names(&a, "name"), vec!["registry one"]);
        let mut all = names(&w.get(&team_path("automations"), &w.member).await, "name");
        all.sort();
        assert_eq!(all, vec!["llm one", "registry one", "vision one"]);
    }
}

per_backend! {
    async fn the_registry_filter_lists_registry_and_collection_scopes(backend) {
        let w = World::new(backend).await;
        w.automation(&artifact_automation("whole registry", json!({"type": "registry", "registry": "models"}))).await;
        w.automation(&artifact_automation("one collection", json!({"type": "collection", "registry": "models", "collection": "churn"}))).await;
        w.automation(&artifact_automation("other registry", json!({"type": "registry", "registry": "datasets"}))).await;
        let mut found = names(&w.get(&format!("{}?registry=models", team_path("automations")), &w.member).await, "name");
        found.sort();
        assert_eq!(found, vec!["one collection", "whole registry"]);
    }
}

per_backend! {
    async fn an_invalid_list_filter_is_refused(backend) {
        let w = World::new(backend).await;
        assert_invalid(&w.get(&format!("{}?project=bad%20name", team_path("automations")), &w.admin).await, "project");
        assert_invalid(&w.get(&format!("{}?project=a&registry=b", team_path("automations")), &w.admin).await, "registry");
    }
}

per_backend! {
    async fn the_automation_list_pages_with_limit_and_cursor(backend) {
        let w = World::new(backend).await;
        for i in 0..5 {
            w.automation(&no_op_automation(&format!("auto {i}"), "llm")).await;
        }
        let (mut all, pages) = collect_pages(&w, &team_path("automations"), &w.admin, 2, "name").await;
        all.sort();
        assert_eq!(all, vec!["auto 0", "auto 1", "auto 2", "auto 3", "auto 4"]);
        assert!(pages >= 3);
    }
}

per_backend! {
    async fn the_project_filtered_list_pages_with_limit_and_cursor(backend) {
        let w = World::new(backend).await;
        for i in 0..5 {
            w.automation(&no_op_automation(&format!("auto {i}"), "llm")).await;
        }
        w.automation(&no_op_automation("elsewhere", "vision")).await;
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}?project=llm&limit=2", team_path("automations"));
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let a = w.get(&url, &w.admin).await;
            all.extend(names(&a, "name"));
            match a.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        all.sort();
        assert_eq!(all, vec!["auto 0", "auto 1", "auto 2", "auto 3", "auto 4"]);
    }
}

// ---- roles -------------------------------------------------------------------------------------

per_backend! {
    async fn a_registry_admin_manages_automations_of_their_registry_and_its_collections(backend) {
        let w = World::new(backend).await;
        let a = w.automation_as(&w.registry_admin, &artifact_automation("r", json!({"type": "registry", "registry": "models"}))).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(a.body["created_by"], "rita");
        let c = w.automation_as(&w.registry_admin, &artifact_automation("c", json!({"type": "collection", "registry": "models", "collection": "churn"}))).await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
        let path = automation_path(&id_of(&c.body));
        assert_eq!(w.patch(&path, &w.registry_admin, &json!({"enabled": false})).await.status, StatusCode::OK);
        assert_eq!(w.delete(&path, &w.registry_admin).await.status, StatusCode::NO_CONTENT);
    }
}

per_backend! {
    async fn a_registry_admin_cannot_create_outside_their_registries(backend) {
        let w = World::new(backend).await;
        let other = artifact_automation("d", json!({"type": "registry", "registry": "datasets"}));
        assert_problem(&w.automation_as(&w.registry_admin, &other).await, StatusCode::FORBIDDEN);
        assert_problem(&w.automation_as(&w.registry_admin, &no_op_automation("p", "llm")).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn a_registry_admin_cannot_move_an_automation_out_of_their_registry(backend) {
        let w = World::new(backend).await;
        let a = w.automation_as(&w.registry_admin, &artifact_automation("r", json!({"type": "registry", "registry": "models"}))).await;
        let path = automation_path(&id_of(&a.body));
        let moved = artifact_automation("r", json!({"type": "registry", "registry": "datasets"}));
        assert_problem(&w.put(&path, &w.registry_admin, &moved).await, StatusCode::FORBIDDEN);
        let patch = json!({"scope": {"type": "project", "project": "llm", "registry": null}});
        assert_problem(&w.patch(&path, &w.registry_admin, &patch).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn a_registry_admin_cannot_change_automations_of_other_scopes(backend) {
        let w = World::new(backend).await;
        let id = w.automation(&no_op_automation("project one", "llm")).await;
        let path = automation_path(&id);
        assert_problem(&w.patch(&path, &w.registry_admin, &json!({"enabled": false})).await, StatusCode::FORBIDDEN);
        let into_registry = artifact_automation("project one", json!({"type": "registry", "registry": "models"}));
        assert_problem(&w.put(&path, &w.registry_admin, &into_registry).await, StatusCode::FORBIDDEN);
        assert_problem(&w.delete(&path, &w.registry_admin).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn members_read_automations_but_cannot_change_them(backend) {
        let w = World::new(backend).await;
        let id = w.automation(&no_op_automation("a", "llm")).await;
        let path = automation_path(&id);
        assert_eq!(w.get(&path, &w.member).await.status, StatusCode::OK);
        assert_eq!(w.get(&team_path("automations"), &w.member).await.status, StatusCode::OK);
        assert_problem(&w.automation_as(&w.member, &no_op_automation("b", "llm")).await, StatusCode::FORBIDDEN);
        assert_problem(&w.put(&path, &w.member, &no_op_automation("a", "llm")).await, StatusCode::FORBIDDEN);
        assert_problem(&w.patch(&path, &w.member, &json!({"enabled": false})).await, StatusCode::FORBIDDEN);
        assert_problem(&w.delete(&path, &w.member).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn producers_cannot_read_or_write_automations(backend) {
        let w = World::new(backend).await;
        let id = w.automation(&no_op_automation("a", "llm")).await;
        assert_problem(&w.get(&team_path("automations"), &w.producer).await, StatusCode::FORBIDDEN);
        assert_problem(&w.get(&automation_path(&id), &w.producer).await, StatusCode::FORBIDDEN);
        assert_problem(&w.automation_as(&w.producer, &no_op_automation("b", "llm")).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn outsiders_get_not_found_for_every_automation_route(backend) {
        let w = World::new(backend).await;
        let path = automation_path(&w.automation(&no_op_automation("a", "llm")).await);
        assert_problem(&w.get(&team_path("automations"), &w.outsider).await, StatusCode::NOT_FOUND);
        assert_problem(&w.automation_as(&w.outsider, &no_op_automation("b", "llm")).await, StatusCode::NOT_FOUND);
        assert_problem(&w.get(&path, &w.outsider).await, StatusCode::NOT_FOUND);
        assert_problem(&w.put(&path, &w.outsider, &no_op_automation("a", "llm")).await, StatusCode::NOT_FOUND);
        assert_problem(&w.patch(&path, &w.outsider, &json!({"enabled": false})).await, StatusCode::NOT_FOUND);
        assert_problem(&w.delete(&path, &w.outsider).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn the_system_admin_manages_any_teams_automations(backend) {
        let w = World::new(backend).await;
        let a = w.automation_as(&w.system, &no_op_automation("by system", "llm")).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(a.body["created_by"], "system");
    }
}
