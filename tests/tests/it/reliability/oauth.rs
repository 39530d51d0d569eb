//! OAuth abuse (DESIGN §9), beyond what `slack::failures` covers (forged claims, expired and
//! replayed state, missing or foreign cookie): redirect targets an attacker adds to the links,
//! states signed by another key or without a signature, duplicated parameters, and tickets
//! that are URLs. Each is refused or ignored, nothing is exchanged with Slack and no answer
//! sends the browser anywhere but Slack or the configured success page.

use automations::app::slack_oauth::state::{OAuthState, StateKey};
use automations::domain::names::UserName;
use reqwest::StatusCode;

use crate::common::stores::Backend;
use crate::slack::support::*;

const EVIL: &str = "https://evil.example/steal";

/// The nonce the browser holds in its flow cookie.
fn cookie_nonce(browser: &Browser) -> String {
    browser.cookie.clone().expect("flow cookie").split_once('=').expect("cookie pair").1.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_link_with_a_foreign_redirect_uri_still_sends_slack_back_to_the_service() {
    let (t, fake, admin) = spawn(Backend::Sqlite).await;
    let link = install_link(&t, &admin).await;
    let tampered = with_param(&with_param(&link, "redirect_uri", EVIL), "state", "attacker-state");

    let authorize = open_install_link(&mut Browser::new(&t), &tampered).await;

    assert!(authorize.starts_with(&format!("{}/oauth/v2/authorize?", fake.base)), "{authorize}");
    let query = query_of(&authorize);
    assert_eq!(query["redirect_uri"], format!("{}/slack/oauth/callback", t.base));
    assert_ne!(query["state"], "attacker-state");
    assert!(!authorize.contains("evil.example"), "{authorize}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_naming_another_destination_does_not_send_the_browser_there() {
    let (t, _fake, admin) = spawn(Backend::Sqlite).await;
    let mut browser = Browser::new(&t);
    let callback = until_callback(&t, &mut browser, &admin).await;
    let tampered = ["redirect_uri", "next", "return_to", "redirect"]
        .iter()
        .fold(callback, |url, name| with_param(&url, name, EVIL));

    let page = browser.get(&tampered).await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.location, None);
    assert!(!page.text.contains("evil.example"), "{}", page.text);
    assert_eq!(integrations(&t).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_cannot_change_the_configured_success_redirect() {
    let (t, _fake, admin) =
        spawn_with(Backend::Sqlite, |c| c.slack_success_redirect = Some("https://ui.example.com/done".into())).await;
    let mut browser = Browser::new(&t);
    let callback = until_callback(&t, &mut browser, &admin).await;

    let page = browser.get(&with_param(&callback, "redirect_uri", EVIL)).await;

    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    let location = page.location.expect("location");
    assert!(location.starts_with("https://ui.example.com/done?"), "{location}");
    assert!(!location.contains("evil.example"), "{location}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_callback_never_redirects_even_when_asked_to() {
    let (t, fake, admin) =
        spawn_with(Backend::Sqlite, |c| c.slack_success_redirect = Some("https://ui.example.com/done".into())).await;
    let mut browser = Browser::new(&t);
    let callback = until_callback(&t, &mut browser, &admin).await;

    let page = browser.get(&with_param(&with_param(&callback, "state", "forged.state"), "redirect_uri", EVIL)).await;

    assert_page(&page, StatusCode::BAD_REQUEST, "cannot be verified");
    assert_eq!(page.location, None);
    assert_eq!(fake.exchanges(), 0);
    assert_nothing_stored(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_that_is_a_url_is_refused_without_a_redirect_or_cookie() {
    let (t, _fake, _admin) = spawn(Backend::Sqlite).await;

    let page = Browser::new(&t).get(&with_param(&format!("{}/slack/install", t.base), "ticket", EVIL)).await;

    assert_page(&page, StatusCode::BAD_REQUEST, "invalid, expired or already used");
    assert_eq!(page.location, None);
    assert_eq!(page.set_cookie, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_signed_with_another_key_is_refused() {
    let (t, fake, admin) = spawn(Backend::Sqlite).await;
    let mut browser = Browser::new(&t);
    let callback = until_callback(&t, &mut browser, &admin).await;
    // Claims that would be accepted (this browser's nonce, this team, not expired), signed by a
    // key that is not the service's: what another deployment or a guess produces.
    let claims = OAuthState {
        nonce: cookie_nonce(&browser),
        team: team(),
        user: Some(UserName::parse("alice").expect("user")),
        exp: jiff::Timestamp::now().as_second() + 300,
    };
    let foreign = claims.sign(&StateKey::generate().expect("key"));

    let page = browser.get(&with_param(&callback, "state", &foreign)).await;

    assert_page(&page, StatusCode::BAD_REQUEST, "cannot be verified");
    assert_eq!(fake.exchanges(), 0);
    assert_nothing_stored(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_without_its_signature_is_refused() {
    let (t, fake, admin) = spawn(Backend::Sqlite).await;
    let mut browser = Browser::new(&t);
    let callback = until_callback(&t, &mut browser, &admin).await;
    let state = query_of(&callback)["state"].clone();
    let (claims, _) = state.split_once('.').expect("signed state");

    let cookie = browser.cookie.clone();
    for unsigned in [claims.to_owned(), format!("{claims}."), format!("{claims}.AAAA")] {
        // Every callback ends the flow and clears the cookie; the attacker keeps it.
        browser.cookie = cookie.clone();
        let page = browser.get(&with_param(&callback, "state", &unsigned)).await;
        assert_page(&page, StatusCode::BAD_REQUEST, "cannot be verified");
    }
    assert_eq!(fake.exchanges(), 0);
    assert_nothing_stored(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_with_two_states_is_refused() {
    let (t, fake, admin) = spawn(Backend::Sqlite).await;
    let mut browser = Browser::new(&t);
    let callback = until_callback(&t, &mut browser, &admin).await;
    let state = query_of(&callback)["state"].clone();
    let doubled = format!("{callback}&state={}", "attacker.state");
    assert!(doubled.contains(&state));

    let page = browser.get(&doubled).await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert_eq!(fake.exchanges(), 0);
    assert_nothing_stored(&t).await;
}
