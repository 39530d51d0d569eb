//! Slack integrations: read and remove what the OAuth flow created.

use reqwest::StatusCode;
use serde_json::json;

use super::support::*;

per_backend! {
    async fn members_list_and_read_slack_integrations(backend) {
        let w = World::new(backend).await;
        let id = w.slack_integration("alerts").await;
        let list = w.get(&team_path("slack-integrations"), &w.member).await;
        assert_eq!(names(&list, "channel"), vec!["#alerts"]);
        let one = w.get(&team_path(&format!("slack-integrations/{id}")), &w.member).await;
        assert_eq!(one.status, StatusCode::OK, "{}", one.text);
        for field in ["id", "channel", "channel_id", "slack_team_id", "slack_team_name", "configuration_url", "state", "broken_reason", "installed_by", "created_at"] {
            assert!(one.body.get(field).is_some(), "no {field} in {}", one.text);
        }
        assert_eq!(one.body["state"], "active");
        assert!(!one.text.contains(CANARY) && !list.text.contains(CANARY));
    }
}

per_backend! {
    async fn deleting_a_slack_integration_removes_it_and_its_credentials(backend) {
        let w = World::new(backend).await;
        let id = w.slack_integration("alerts").await;
        let path = team_path(&format!("slack-integrations/{id}"));
        assert_eq!(w.delete(&path, &w.admin).await.status, StatusCode::NO_CONTENT);
        assert_problem(&w.get(&path, &w.admin).await, StatusCode::NOT_FOUND);
        assert_eq!(w.stored_secret(&slack_secret_path(&id)).await, None);
        assert_problem(&w.delete(&path, &w.admin).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn a_slack_integration_an_automation_uses_cannot_be_deleted(backend) {
        let w = World::new(backend).await;
        let id = w.slack_integration("alerts").await;
        let mut spec = no_op_automation("notify", "llm");
        spec["action"] = json!({"type": "slack", "integration_id": id, "title": "Run failed", "message": "${run_name}"});
        w.automation(&spec).await;
        assert_problem(&w.delete(&team_path(&format!("slack-integrations/{id}")), &w.admin).await, StatusCode::CONFLICT);
    }
}

per_backend! {
    async fn members_cannot_delete_slack_integrations(backend) {
        let w = World::new(backend).await;
        let id = w.slack_integration("alerts").await;
        assert_problem(&w.delete(&team_path(&format!("slack-integrations/{id}")), &w.member).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn producers_cannot_read_slack_integrations(backend) {
        let w = World::new(backend).await;
        let id = w.slack_integration("alerts").await;
        assert_problem(&w.get(&team_path("slack-integrations"), &w.producer).await, StatusCode::FORBIDDEN);
        assert_problem(&w.get(&team_path(&format!("slack-integrations/{id}")), &w.producer).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn outsiders_get_not_found_for_every_slack_integration_route(backend) {
        let w = World::new(backend).await;
        let path = team_path(&format!("slack-integrations/{}", w.slack_integration("alerts").await));
        assert_problem(&w.get(&team_path("slack-integrations"), &w.outsider).await, StatusCode::NOT_FOUND);
        assert_problem(&w.get(&path, &w.outsider).await, StatusCode::NOT_FOUND);
        assert_problem(&w.delete(&path, &w.outsider).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn an_unknown_slack_integration_is_not_found(backend) {
        let w = World::new(backend).await;
        let a = w.get(&team_path("slack-integrations/si_01JAAAAAAAAAAAAAAAAAAAAAAA"), &w.admin).await;
        assert_problem(&a, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn the_slack_integration_list_pages_with_limit_and_cursor(backend) {
        let w = World::new(backend).await;
        for channel in ["a", "b", "c"] {
            w.slack_integration(channel).await;
        }
        let (mut all, pages) = collect_pages(&w, &team_path("slack-integrations"), &w.admin, 2, "channel").await;
        all.sort();
        assert_eq!(all, vec!["#a", "#b", "#c"]);
        assert!(pages >= 2);
    }
}
