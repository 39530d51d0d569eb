//! The connect flow's happy paths: install link → Slack → callback → a usable integration.

use automations::delivery::sender::OutgoingRequest;
use automations::domain::slack::IntegrationState;
use reqwest::StatusCode;

use super::support::*;

per_backend! {
    async fn the_install_link_sends_the_browser_to_slacks_authorize_page(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);
        let link = install_link(&t, &admin).await;

        let page = browser.get(&link).await;

        assert_eq!(page.status, StatusCode::FOUND);
        let location = page.location.expect("location");
        assert!(location.starts_with(&format!("{}/oauth/v2/authorize?", fake.base)), "{location}");
        let query = query_of(&location);
        assert_eq!(query["client_id"], CLIENT_ID);
        assert_eq!(query["scope"], "incoming-webhook");
        assert_eq!(query["redirect_uri"], format!("{}/slack/oauth/callback", t.base));
        let (payload, signature) = query["state"].split_once('.').expect("signed state");
        assert!(!payload.is_empty() && !signature.is_empty());
        assert!(!location.contains(CLIENT_SECRET));
    }
}

per_backend! {
    async fn the_flow_cookie_is_http_only_lax_and_scoped_to_slack_paths(backend) {
        let (t, _fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);
        let link = install_link(&t, &admin).await;

        let page = browser.get(&link).await;

        let cookie = page.set_cookie.expect("set-cookie");
        assert!(cookie.starts_with("automations_slack_oauth="), "{cookie}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/slack", "Max-Age=600"] {
            assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
        }
        // The local process serves plain http: a Secure cookie would never come back.
        assert!(!cookie.contains("Secure"), "{cookie}");
        let nonce = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
        assert!(nonce.len() >= 40, "the nonce is long and random: {nonce}");
    }
}

per_backend! {
    async fn the_flow_cookie_is_secure_when_cookies_are_not_insecure(backend) {
        let (t, _fake, admin) = spawn_with(backend, |c| c.insecure_cookies = false).await;
        let mut browser = Browser::new(&t);
        let link = install_link(&t, &admin).await;

        let page = browser.get(&link).await;

        assert!(page.set_cookie.expect("set-cookie").contains("; Secure"));
    }
}

per_backend! {
    async fn connecting_a_channel_stores_an_active_integration_and_its_credentials(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);

        let page = connect(&t, &mut browser, &admin).await;

        assert_page(&page, StatusCode::OK, "Connected #alerts to ml-team");
        let stored = integrations(&t).await;
        assert_eq!(stored.len(), 1);
        let integration = &stored[0];
        assert_eq!(integration.channel, "#alerts");
        assert_eq!(integration.channel_id, "C0ALERTS");
        assert_eq!(integration.slack_team_id, "T0ACME");
        assert_eq!(integration.slack_team_name, "Acme <Research>");
        assert_eq!(integration.configuration_url, "https://acme.slack.com/services/B0CONF");
        assert_eq!(integration.state, IntegrationState::Active);
        assert_eq!(integration.broken_reason, None);
        assert_eq!(integration.installed_by, "alice");
        assert!(integration.id.as_str().starts_with("si_"));
        let credentials = credentials(&t, integration).await.expect("credentials stored");
        assert_eq!(credentials.incoming_webhook_url, fake.lock().webhook_urls[0]);
        assert_eq!(credentials.access_token, ACCESS_TOKEN);
    }
}

per_backend! {
    async fn the_code_is_exchanged_with_the_registered_client_and_redirect_uri(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);

        connect(&t, &mut browser, &admin).await;

        let exchanges = fake.lock().exchanges.clone();
        assert_eq!(exchanges.len(), 1);
        assert_eq!(exchanges[0]["client_id"], CLIENT_ID);
        assert_eq!(exchanges[0]["client_secret"], CLIENT_SECRET);
        assert_eq!(exchanges[0]["code"], "code-1");
        assert_eq!(exchanges[0]["redirect_uri"], format!("{}/slack/oauth/callback", t.base));
    }
}

per_backend! {
    async fn the_success_page_escapes_names_and_shows_no_secret(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);

        let page = connect(&t, &mut browser, &admin).await;

        assert!(page.text.contains("Acme &lt;Research&gt;"), "{}", page.text);
        assert!(!page.text.contains("<Research>"));
        let webhook_url = fake.lock().webhook_urls[0].clone();
        for secret in [CLIENT_SECRET, ACCESS_TOKEN, webhook_url.as_str(), "hook-secret-canary"] {
            assert!(!page.text.contains(secret), "the page shows a secret");
        }
        let integration = &integrations(&t).await[0];
        assert!(page.text.contains(integration.id.as_str()));
    }
}

per_backend! {
    async fn the_callback_clears_the_flow_cookie(backend) {
        let (t, _fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);

        let page = connect(&t, &mut browser, &admin).await;

        let cleared = page.set_cookie.expect("set-cookie");
        assert!(cleared.starts_with("automations_slack_oauth=;"), "{cleared}");
        assert!(cleared.contains("Max-Age=0") && cleared.contains("Path=/slack"), "{cleared}");
        assert_eq!(browser.cookie, None);
    }
}

per_backend! {
    async fn a_configured_success_redirect_sends_the_browser_there(backend) {
        let (t, _fake, admin) =
            spawn_with(backend, |c| c.slack_success_redirect = Some("https://ui.example.com/slack/done?from=oauth".into())).await;
        let mut browser = Browser::new(&t);

        let page = connect(&t, &mut browser, &admin).await;

        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let integration = &integrations(&t).await[0];
        let location = page.location.expect("location");
        assert!(location.starts_with("https://ui.example.com/slack/done?"), "{location}");
        let query = query_of(&location);
        assert_eq!(query["from"], "oauth");
        assert_eq!(query["team"], TEAM);
        assert_eq!(query["integration_id"], integration.id.as_str());
        assert!(page.set_cookie.expect("set-cookie").contains("Max-Age=0"));
    }
}

per_backend! {
    async fn reconnecting_the_same_channel_updates_the_integration_and_keeps_its_id(backend) {
        let (t, fake, admin) = spawn(backend).await;
        connect(&t, &mut Browser::new(&t), &admin).await;
        let first = integrations(&t).await.remove(0);
        let bob = t.seed_user("bob").await;
        t.seed_member(TEAM, "bob", automations::domain::team::Role::Admin, &[]).await;

        let page = connect(&t, &mut Browser::new(&t), &bob).await;

        assert_page(&page, StatusCode::OK, "Connected #alerts to ml-team");
        let stored = integrations(&t).await;
        assert_eq!(stored.len(), 1, "one integration per channel");
        assert_eq!(stored[0].id, first.id);
        assert_eq!(stored[0].created_at, first.created_at);
        assert_eq!(stored[0].installed_by, "bob");
        let credentials = credentials(&t, &stored[0]).await.expect("credentials");
        assert_eq!(credentials.incoming_webhook_url, fake.lock().webhook_urls[1], "the newest webhook is kept");
    }
}

per_backend! {
    async fn connecting_another_channel_adds_a_second_integration(backend) {
        let (t, fake, admin) = spawn(backend).await;
        connect(&t, &mut Browser::new(&t), &admin).await;
        {
            let mut s = fake.lock();
            s.channel = "#deploys".into();
            s.channel_id = "C0DEPLOYS".into();
        }

        let page = connect(&t, &mut Browser::new(&t), &admin).await;

        assert_page(&page, StatusCode::OK, "Connected #deploys to ml-team");
        let mut channels: Vec<String> = integrations(&t).await.into_iter().map(|i| i.channel).collect();
        channels.sort();
        assert_eq!(channels, ["#alerts", "#deploys"]);
    }
}

per_backend! {
    async fn the_system_admin_can_connect_a_channel_too(backend) {
        let (t, _fake, _admin) = spawn(backend).await;

        let page = connect(&t, &mut Browser::new(&t), &t.admin_token.clone()).await;

        assert_page(&page, StatusCode::OK, "Connected #alerts");
        assert_eq!(integrations(&t).await[0].installed_by, "system");
    }
}

per_backend! {
    async fn a_connected_channel_receives_messages_at_its_incoming_webhook(backend) {
        let (t, fake, admin) = spawn(backend).await;
        connect(&t, &mut Browser::new(&t), &admin).await;
        let integration = integrations(&t).await.remove(0);
        let credentials = credentials(&t, &integration).await.expect("credentials");

        let message = serde_json::json!({"text": "loss diverged", "blocks": []});
        let result = t
            .app
            .sender
            .send(&OutgoingRequest {
                url: credentials.incoming_webhook_url.parse().unwrap(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: serde_json::to_vec(&message).unwrap(),
            })
            .await;

        assert_eq!(result.status, Some(200), "{result:?}");
        assert_eq!(result.body, "ok");
        let messages = fake.lock().messages.clone();
        assert_eq!(messages.len(), 1);
        assert!(messages[0].0.starts_with("T0ACME/"));
        assert_eq!(messages[0].1, message);
    }
}

per_backend! {
    async fn reconnecting_a_broken_channel_makes_it_active_again(backend) {
        let (t, _fake, admin) = spawn(backend).await;
        connect(&t, &mut Browser::new(&t), &admin).await;
        let id = integrations(&t).await[0].id.clone();
        let old = t.app.repo.slack(&team(), &id).await.unwrap().expect("stored");
        let broken = automations::domain::slack::SlackIntegration {
            state: IntegrationState::Broken,
            broken_reason: Some("channel_not_found".into()),
            ..old.value.clone()
        };
        t.app.repo.update(&automations::app::repo::keys::slack(&team(), &id), &broken, old.version).await.unwrap();

        connect(&t, &mut Browser::new(&t), &admin).await;

        let stored = integrations(&t).await;
        assert_eq!(stored.len(), 1);
        assert_eq!((stored[0].id.clone(), stored[0].state, stored[0].broken_reason.clone()), (id, IntegrationState::Active, None));
    }
}

per_backend! {
    async fn a_slack_automation_on_a_connected_channel_posts_a_block_kit_message(backend) {
        let (t, fake, admin) = spawn(backend).await;
        connect(&t, &mut Browser::new(&t), &admin).await;
        let integration = integrations(&t).await.remove(0);
        let spec = serde_json::json!({
            "name": "run failed", "scope": {"type": "project", "project": "llm"},
            "event": {"type": "RUN_STATE", "states": ["FAILED"]},
            "action": {"type": "slack", "integration_id": integration.id, "title": "Run failed",
                       "message": "${run_name} is ${run_state}", "severity": "ERROR"}
        });
        let created = t.post("/v1/teams/ml-team/automations", &admin, &spec).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let _workers = automations::startup::spawn_local_workers(&t.app, 4, t.shutdown.subscribe());
        let event = serde_json::json!({"id": "e-1", "type": "RUN_STATE", "team": "ml-team", "project": "llm",
            "run": {"id": "r1", "name": "ablation-3", "state": "CRASHED", "url": "https://wandb.example/r1"}});
        let posted = t.post("/v1/events", &admin, &event).await;
        assert_eq!(posted.status, StatusCode::ACCEPTED, "{}", posted.text);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while fake.lock().messages.is_empty() {
            assert!(std::time::Instant::now() < deadline, "no message reached the fake Slack");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (_, message) = fake.lock().messages[0].clone();
        let text = message.to_string();
        assert!(text.contains("Run failed") && text.contains("ablation-3 is CRASHED"), "{text}");
        assert!(message["blocks"].as_array().is_some_and(|b| !b.is_empty()));
    }
}
