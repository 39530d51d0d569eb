//! Users, teams and members.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::*;

per_backend! {
    async fn creating_a_user_returns_a_token_that_authenticates(backend) {
        let w = World::new(backend).await;
        let a = w.post("/v1/users", &w.system, &json!({"name": "carol"})).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(a.body["name"], "carol");
        let token = a.body["token"].as_str().unwrap().to_owned();
        w.put(&team_path("members/carol"), &w.admin, &json!({"role": "member"})).await;
        assert_eq!(w.get(&team_path("members"), &token).await.status, StatusCode::OK);
    }
}

per_backend! {
    async fn creating_a_user_needs_the_system_token(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.post("/v1/users", &w.admin, &json!({"name": "carol"})).await, StatusCode::FORBIDDEN);
        let a = w.app.call(Method::POST, "/v1/users", None, Some(&json!({"name": "carol"}))).await;
        assert_problem(&a, StatusCode::UNAUTHORIZED);
    }
}

per_backend! {
    async fn a_taken_user_name_is_a_conflict(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.post("/v1/users", &w.system, &json!({"name": "bob"})).await, StatusCode::CONFLICT);
    }
}

per_backend! {
    async fn an_invalid_user_name_is_refused_naming_the_field(backend) {
        let w = World::new(backend).await;
        assert_invalid(&w.post("/v1/users", &w.system, &json!({"name": "Not Valid"})).await, "name");
    }
}

per_backend! {
    async fn creating_a_team_answers_its_name_and_creation_time(backend) {
        let w = World::new(backend).await;
        let a = w.post("/v1/teams", &w.system, &json!({"name": "vision"})).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(a.body["name"], "vision");
        assert!(a.body["created_at"].is_string());
    }
}

per_backend! {
    async fn a_taken_team_name_is_a_conflict(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.post("/v1/teams", &w.system, &json!({"name": TEAM})).await, StatusCode::CONFLICT);
    }
}

per_backend! {
    async fn only_the_system_admin_creates_teams(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.post("/v1/teams", &w.admin, &json!({"name": "vision"})).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn a_team_admin_grants_a_role(backend) {
        let w = World::new(backend).await;
        w.app.seed_user("carol").await;
        let a = w.put(&team_path("members/carol"), &w.admin, &json!({"role": "member", "registries": ["models"]})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body, json!({"user": "carol", "role": "member", "registries": ["models"]}));
    }
}

per_backend! {
    async fn the_system_admin_grants_roles_in_any_team(backend) {
        let w = World::new(backend).await;
        let a = w.put(&team_path("members/olga"), &w.system, &json!({"role": "admin"})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(w.get(&team_path("members"), &w.outsider).await.status, StatusCode::OK);
    }
}

per_backend! {
    async fn granting_a_role_to_an_unknown_user_is_not_found(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.put(&team_path("members/nobody"), &w.admin, &json!({"role": "member"})).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn members_and_producers_cannot_grant_roles(backend) {
        let w = World::new(backend).await;
        let body = json!({"role": "admin"});
        assert_problem(&w.put(&team_path("members/bob"), &w.member, &body).await, StatusCode::FORBIDDEN);
        assert_problem(&w.put(&team_path("members/pat"), &w.producer, &body).await, StatusCode::FORBIDDEN);
        assert_problem(&w.put(&team_path("members/olga"), &w.outsider, &body).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn registries_are_only_granted_with_the_member_role(backend) {
        let w = World::new(backend).await;
        let a = w.put(&team_path("members/pat"), &w.admin, &json!({"role": "producer", "registries": ["models"]})).await;
        assert_invalid(&a, "registries");
    }
}

per_backend! {
    async fn an_unknown_role_is_refused_naming_the_field(backend) {
        let w = World::new(backend).await;
        assert_invalid(&w.put(&team_path("members/bob"), &w.admin, &json!({"role": "owner"})).await, "role");
    }
}

per_backend! {
    async fn members_read_the_member_list_and_producers_do_not(backend) {
        let w = World::new(backend).await;
        let a = w.get(&team_path("members"), &w.member).await;
        assert_eq!(names(&a, "user"), vec!["alice", "bob", "pat", "rita"]);
        assert_problem(&w.get(&team_path("members"), &w.producer).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn outsiders_do_not_see_that_the_team_exists(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.get(&team_path("members"), &w.outsider).await, StatusCode::NOT_FOUND);
        assert_problem(&w.get("/v1/teams/no-such-team/members", &w.outsider).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn removing_a_member_revokes_their_access(backend) {
        let w = World::new(backend).await;
        let a = w.delete(&team_path("members/bob"), &w.admin).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
        assert_problem(&w.get(&team_path("members"), &w.member).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn removing_someone_who_is_not_a_member_is_not_found(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.delete(&team_path("members/olga"), &w.admin).await, StatusCode::NOT_FOUND);
    }
}

per_backend! {
    async fn only_admins_remove_members(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.delete(&team_path("members/pat"), &w.member).await, StatusCode::FORBIDDEN);
    }
}

per_backend! {
    async fn the_member_list_pages_with_limit_and_cursor(backend) {
        let w = World::new(backend).await;
        let (users, pages) = collect_pages(&w, &team_path("members"), &w.admin, 3, "user").await;
        assert_eq!(users, vec!["alice", "bob", "pat", "rita"]);
        assert!(pages >= 2);
    }
}

per_backend! {
    async fn a_limit_outside_1_to_100_is_refused(backend) {
        let w = World::new(backend).await;
        assert_invalid(&w.get(&format!("{}?limit=0", team_path("members")), &w.admin).await, "limit");
        assert_invalid(&w.get(&format!("{}?limit=101", team_path("members")), &w.admin).await, "limit");
    }
}

per_backend! {
    async fn a_cursor_the_service_did_not_issue_is_refused(backend) {
        let w = World::new(backend).await;
        assert_invalid(&w.get(&format!("{}?cursor=garbage", team_path("members")), &w.admin).await, "cursor");
    }
}

per_backend! {
    async fn a_missing_or_unknown_token_is_unauthenticated(backend) {
        let w = World::new(backend).await;
        assert_problem(&w.app.call(Method::GET, &team_path("members"), None, None).await, StatusCode::UNAUTHORIZED);
        assert_problem(&w.get(&team_path("members"), "atk_not-a-token").await, StatusCode::UNAUTHORIZED);
    }
}
