//! `PUT/GET /v1/admin/slack-app` and `POST /v1/teams/{team}/slack-integrations/install`.

use automations::app::repo::keys::secret_path;
use automations::domain::team::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::*;
use crate::common::app::TestApp;

per_backend! {
    async fn registering_the_slack_app_keeps_the_secret_out_of_every_answer(backend) {
        let t = TestApp::spawn(backend).await;

        register_app(&t).await;
        let got = t.get("/v1/admin/slack-app", &t.admin_token).await;

        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.body, json!({
            "client_id": CLIENT_ID,
            "configured": true,
            "redirect_url": format!("{}/slack/oauth/callback", t.base),
        }));
        assert!(!got.text.contains(CLIENT_SECRET));
        let stored = t.app.secrets.get(secret_path::SLACK_APP).await.unwrap().expect("stored");
        assert!(stored.expose().contains(CLIENT_SECRET));
    }
}

per_backend! {
    async fn before_registration_the_slack_app_shows_as_not_configured(backend) {
        let t = TestApp::spawn(backend).await;

        let got = t.get("/v1/admin/slack-app", &t.admin_token).await;

        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.body["configured"], false);
        assert_eq!(got.body["client_id"], serde_json::Value::Null);
        assert_eq!(got.body["redirect_url"], format!("{}/slack/oauth/callback", t.base));
    }
}

per_backend! {
    async fn registering_again_replaces_the_app(backend) {
        let t = TestApp::spawn(backend).await;
        register_app(&t).await;

        let body = json!({"client_id": "111.222", "client_secret": "other-secret"});
        let res = t.call(Method::PUT, "/v1/admin/slack-app", Some(&t.admin_token), Some(&body)).await;

        assert_eq!(res.status, StatusCode::NO_CONTENT);
        assert_eq!(t.get("/v1/admin/slack-app", &t.admin_token).await.body["client_id"], "111.222");
    }
}

per_backend! {
    async fn only_the_system_admin_sees_or_changes_the_slack_app(backend) {
        let t = TestApp::spawn(backend).await;
        let team_admin = t.seed_team_with_admin(TEAM, "alice").await;
        let body = json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET});

        let put = t.call(Method::PUT, "/v1/admin/slack-app", Some(&team_admin), Some(&body)).await;
        let get = t.get("/v1/admin/slack-app", &team_admin).await;
        let anonymous = t.call(Method::GET, "/v1/admin/slack-app", None, None).await;

        assert_eq!(put.status, StatusCode::FORBIDDEN);
        assert_eq!(get.status, StatusCode::FORBIDDEN);
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        assert!(t.app.secrets.get(secret_path::SLACK_APP).await.unwrap().is_none());
    }
}

per_backend! {
    async fn empty_credentials_are_refused_field_by_field(backend) {
        let t = TestApp::spawn(backend).await;

        let body = json!({"client_id": "", "client_secret": "has space"});
        let res = t.call(Method::PUT, "/v1/admin/slack-app", Some(&t.admin_token), Some(&body)).await;

        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(res.content_type, "application/problem+json");
        let fields: Vec<&str> = res.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["client_id", "client_secret"]);
        assert!(!res.text.contains("has space"));
    }
}

per_backend! {
    async fn an_unknown_field_in_the_registration_is_a_bad_request(backend) {
        let t = TestApp::spawn(backend).await;

        let body = json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scope": "chat:write"});
        let res = t.call(Method::PUT, "/v1/admin/slack-app", Some(&t.admin_token), Some(&body)).await;

        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert_eq!(res.body["errors"][0]["field"], "scope");
    }
}

per_backend! {
    async fn an_install_link_is_a_fresh_random_url_on_the_service(backend) {
        let (t, _fake, admin) = spawn(backend).await;

        let url = install_link(&t, &admin).await;

        let prefix = format!("{}/slack/install?ticket=", t.base);
        assert!(url.starts_with(&prefix), "{url}");
        assert!(url.len() > prefix.len() + 40, "the ticket is long and random: {url}");
        assert_ne!(install_link(&t, &admin).await, url);
    }
}

per_backend! {
    async fn an_install_link_needs_a_registered_slack_app(backend) {
        let t = TestApp::spawn(backend).await;
        let admin = t.seed_team_with_admin(TEAM, "alice").await;

        let res = t.post(&format!("/v1/teams/{TEAM}/slack-integrations/install"), &admin, &json!({})).await;

        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.content_type, "application/problem+json");
        assert!(res.body["detail"].as_str().unwrap().contains("/v1/admin/slack-app"));
    }
}

per_backend! {
    async fn only_team_admins_get_install_links(backend) {
        let (t, _fake, _admin) = spawn(backend).await;
        let member = t.seed_user("bob").await;
        t.seed_member(TEAM, "bob", Role::Member, &[]).await;
        let stranger = t.seed_user("eve").await;
        let path = format!("/v1/teams/{TEAM}/slack-integrations/install");

        let as_member = t.post(&path, &member, &json!({})).await;
        let as_stranger = t.post(&path, &stranger, &json!({})).await;
        let as_system = t.post(&path, &t.admin_token, &json!({})).await;

        assert_eq!(as_member.status, StatusCode::FORBIDDEN);
        assert_eq!(as_stranger.status, StatusCode::NOT_FOUND);
        assert_eq!(as_system.status, StatusCode::OK);
    }
}

per_backend! {
    async fn the_openapi_document_lists_the_slack_app_and_install_routes(backend) {
        let t = TestApp::spawn(backend).await;

        let doc = t.get("/v1/openapi.json", &t.admin_token).await.body;

        assert!(doc["paths"]["/v1/admin/slack-app"]["put"].is_object());
        assert!(doc["paths"]["/v1/admin/slack-app"]["get"].is_object());
        assert!(doc["paths"]["/v1/teams/{team}/slack-integrations/install"]["post"].is_object());
    }
}
