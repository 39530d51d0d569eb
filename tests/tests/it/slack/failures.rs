//! Every way the connect flow can stop: a clear HTML page, the right status, nothing stored,
//! and (where the state was not good) no code exchange with Slack.

use automations::app::repo::keys::secret_path;
use automations::app::slack_oauth::state::OAuthState;
use automations::domain::names::{TeamName, UserName};
use automations::domain::team::Role;
use reqwest::StatusCode;

use super::support::*;

per_backend! {
    async fn an_install_url_without_a_ticket_is_refused(backend) {
        let (t, _fake, _admin) = spawn(backend).await;

        let page = Browser::new(&t).get(&format!("{}/slack/install", t.base)).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "This install link is incomplete");
        assert_eq!(page.set_cookie, None);
    }
}

per_backend! {
    async fn an_unknown_ticket_is_refused(backend) {
        let (t, _fake, _admin) = spawn(backend).await;

        let page = Browser::new(&t).get(&format!("{}/slack/install?ticket=made-up", t.base)).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "invalid, expired or already used");
        assert_eq!(page.location, None);
    }
}

per_backend! {
    async fn an_install_link_works_only_once(backend) {
        let (t, _fake, admin) = spawn(backend).await;
        let link = install_link(&t, &admin).await;
        open_install_link(&mut Browser::new(&t), &link).await;

        let again = Browser::new(&t).get(&link).await;

        assert_page(&again, StatusCode::BAD_REQUEST, "invalid, expired or already used");
    }
}

per_backend! {
    async fn an_install_link_opened_while_no_slack_app_is_registered_is_unavailable_and_kept(backend) {
        let (t, _fake, admin) = spawn(backend).await;
        let link = install_link(&t, &admin).await;
        t.app.secrets.delete(secret_path::SLACK_APP).await.unwrap();

        let page = Browser::new(&t).get(&link).await;

        assert_page(&page, StatusCode::SERVICE_UNAVAILABLE, "Slack is not set up");
        register_app(&t).await;
        open_install_link(&mut Browser::new(&t), &link).await;
    }
}

per_backend! {
    async fn a_cancelled_authorization_connects_nothing(backend) {
        let (t, fake, admin) = spawn(backend).await;
        fake.lock().approve = false;
        let mut browser = Browser::new(&t);

        let page = connect(&t, &mut browser, &admin).await;

        assert_page(&page, StatusCode::FORBIDDEN, "Slack connection cancelled");
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
        assert_eq!(browser.cookie, None, "the cookie is cleared");
    }
}

per_backend! {
    async fn a_state_spent_by_a_cancel_cannot_complete_later(backend) {
        let (t, fake, admin) = spawn(backend).await;
        fake.lock().approve = false;
        let mut browser = Browser::new(&t);
        let callback = until_callback(&t, &mut browser, &admin).await;
        let cookie = browser.cookie.clone();
        browser.get(&callback).await;

        browser.cookie = cookie;
        let forged = with_param(&without_param(&callback, "error"), "code", "code-1");
        let page = browser.get(&forged).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "already used");
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn another_authorize_error_shows_slacks_code(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);
        let callback = until_callback(&t, &mut browser, &admin).await;

        let errored = with_param(&without_param(&callback, "code"), "error", "invalid_scope<b>");
        let page = browser.get(&errored).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "Slack did not authorize the app");
        assert!(page.text.contains("invalid_scopeb"), "{}", page.text);
        assert!(!page.text.contains("<b>"));
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn a_callback_without_state_is_refused(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);
        let callback = until_callback(&t, &mut browser, &admin).await;

        let page = browser.get(&without_param(&callback, "state")).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "cannot be verified");
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn a_forged_state_is_refused(backend) {
        let (t, fake, admin) = spawn(backend).await;
        t.seed_team("other-team").await;
        let mut browser = Browser::new(&t);
        let callback = until_callback(&t, &mut browser, &admin).await;
        let state = query_of(&callback)["state"].clone();
        let (_, signature) = state.split_once('.').unwrap();
        let nonce = browser.cookie.clone().unwrap().split_once('=').unwrap().1.to_owned();
        // The same nonce and signature, but claims naming another team.
        let claims = OAuthState {
            nonce,
            team: TeamName::parse("other-team").unwrap(),
            user: Some(UserName::parse("alice").unwrap()),
            exp: 4_000_000_000,
        };
        let key = automations::app::slack_oauth::state::StateKey::new(vec![9; 32]).unwrap();
        let forged_payload = claims.sign(&key).split_once('.').unwrap().0.to_owned();

        let page = browser.get(&with_param(&callback, "state", &format!("{forged_payload}.{signature}"))).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "cannot be verified");
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn an_expired_state_is_refused(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);
        let callback = until_callback(&t, &mut browser, &admin).await;
        let nonce = browser.cookie.clone().unwrap().split_once('=').unwrap().1.to_owned();
        let key = t.app.oauth_state_key().await.unwrap();
        let expired = OAuthState {
            nonce,
            team: team(),
            user: Some(UserName::parse("alice").unwrap()),
            exp: jiff::Timestamp::now().as_second() - 1,
        };

        let page = browser.get(&with_param(&callback, "state", &expired.sign(&key))).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "expired");
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn a_replayed_callback_is_refused(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);
        let callback = until_callback(&t, &mut browser, &admin).await;
        let cookie = browser.cookie.clone();
        assert_eq!(browser.get(&callback).await.status, StatusCode::OK);

        browser.cookie = cookie;
        let page = browser.get(&callback).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "already used");
        assert_eq!(fake.exchanges(), 1);
        assert_eq!(integrations(&t).await.len(), 1);
    }
}

per_backend! {
    async fn a_callback_without_the_flow_cookie_is_refused(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);
        let callback = until_callback(&t, &mut browser, &admin).await;

        let page = Browser::new(&t).get(&callback).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "This browser did not start this connection");
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn a_callback_with_another_flows_cookie_is_refused(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut victim = Browser::new(&t);
        let mut attacker = Browser::new(&t);
        until_callback(&t, &mut victim, &admin).await;
        let attackers_callback = until_callback(&t, &mut attacker, &admin).await;

        let page = victim.get(&attackers_callback).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "This browser did not start this connection");
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn a_callback_without_a_code_is_refused(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);
        let callback = until_callback(&t, &mut browser, &admin).await;

        let page = browser.get(&without_param(&callback, "code")).await;

        assert_page(&page, StatusCode::BAD_REQUEST, "no authorization code");
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn slack_refusing_the_code_shows_its_error_and_stores_nothing(backend) {
        let (t, fake, admin) = spawn(backend).await;
        fake.lock().answer = AccessAnswer::Refuse("bad_redirect_uri");
        let mut browser = Browser::new(&t);

        let page = connect(&t, &mut browser, &admin).await;

        assert_page(&page, StatusCode::BAD_GATEWAY, "Slack refused to connect the channel");
        assert!(page.text.contains("bad_redirect_uri"), "{}", page.text);
        assert_eq!(fake.exchanges(), 1);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn an_unreachable_slack_api_is_a_bad_gateway_and_stores_nothing(backend) {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let (t, _fake, admin) = spawn_with(backend, |c| c.slack_api_base_url = closed).await;
        let mut browser = Browser::new(&t);

        let page = connect(&t, &mut browser, &admin).await;

        assert_page(&page, StatusCode::BAD_GATEWAY, "Slack could not be reached");
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn a_callback_after_the_slack_app_was_removed_is_unavailable(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);
        let callback = until_callback(&t, &mut browser, &admin).await;
        t.app.secrets.delete(secret_path::SLACK_APP).await.unwrap();

        let page = browser.get(&callback).await;

        assert_page(&page, StatusCode::SERVICE_UNAVAILABLE, "Slack is not set up");
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn an_admin_demoted_during_the_flow_cannot_finish_it(backend) {
        let (t, fake, admin) = spawn(backend).await;
        let mut browser = Browser::new(&t);
        let callback = until_callback(&t, &mut browser, &admin).await;
        t.seed_member(TEAM, "alice", Role::Member, &[]).await;

        let page = browser.get(&callback).await;

        assert_page(&page, StatusCode::FORBIDDEN, "Not allowed to connect a channel");
        assert_eq!(fake.exchanges(), 0);
        assert_nothing_stored(&t).await;
    }
}

per_backend! {
    async fn failure_pages_never_show_the_client_secret(backend) {
        let (t, fake, admin) = spawn(backend).await;
        fake.lock().answer = AccessAnswer::Refuse("invalid_code");

        let page = connect(&t, &mut Browser::new(&t), &admin).await;

        assert_eq!(page.status, StatusCode::BAD_GATEWAY);
        assert!(!page.text.contains(CLIENT_SECRET));
    }
}
