//! The outgoing webhook request of DESIGN §7: headers, signatures, and what an execution record
//! shows of it. Shared by delivery and the webhook test endpoint, so both sign the same way.

use std::collections::BTreeMap;

use url::Url;

use crate::app::App;
use crate::app::error::AppResult;
use crate::app::repo::keys::secret_path;
use crate::delivery::sender::OutgoingRequest;
use crate::delivery::signature::{SigningSecret, standard_webhooks_signature, wandb_signature};
use crate::domain::names::{SecretName, TeamName};
use crate::domain::secret::SecretValue;
use crate::domain::webhook::Webhook;
use crate::render::template::{ACCESS_TOKEN, MASK};

/// What the sender sends as `User-Agent` (`crate::startup::USER_AGENT` builds the same text;
/// `app` may not depend on start-up), repeated here so execution records show it.
pub const USER_AGENT: &str = concat!("automations/", env!("CARGO_PKG_VERSION"));

pub const CONTENT_TYPE: &str = "Content-Type";
pub const AUTHORIZATION: &str = "Authorization";
pub const WANDB_SIGNATURE: &str = "X-Wandb-Signature";
pub const WEBHOOK_ID: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The secret material one webhook request is signed and authorized with.
#[derive(Debug, Clone, Copy)]
pub struct WebhookKeys<'a> {
    /// The webhook's Standard Webhooks signing secret (`whsec_…`).
    pub signing: &'a SigningSecret,
    /// Sent as `Authorization: Bearer …`.
    pub access_token: Option<&'a SecretValue>,
    /// Signs the body as `X-Wandb-Signature`.
    pub payload_secret: Option<&'a SecretValue>,
}

/// The headers of DESIGN §7 for `body`, in sending order. `msg_id` is the `webhook-id` (the
/// execution id, so it is stable across retries and redeliveries) and `timestamp` the
/// `webhook-timestamp` in epoch seconds. The sender adds `User-Agent`.
pub fn webhook_headers(msg_id: &str, timestamp: i64, body: &[u8], keys: &WebhookKeys) -> Vec<(String, String)> {
    let mut headers = vec![(CONTENT_TYPE.to_owned(), "application/json".to_owned())];
    if let Some(token) = keys.access_token {
        headers.push((AUTHORIZATION.to_owned(), format!("Bearer {}", token.expose())));
    }
    if let Some(secret) = keys.payload_secret {
        headers.push((WANDB_SIGNATURE.to_owned(), wandb_signature(secret.expose().as_bytes(), body)));
    }
    headers.push((WEBHOOK_ID.to_owned(), msg_id.to_owned()));
    headers.push((WEBHOOK_TIMESTAMP.to_owned(), timestamp.to_string()));
    headers.push((WEBHOOK_SIGNATURE.to_owned(), standard_webhooks_signature(keys.signing, msg_id, timestamp, body)));
    headers
}

/// A complete, signed webhook POST of `body` to `url`.
pub fn signed_webhook_request(
    url: Url,
    msg_id: &str,
    timestamp: i64,
    body: Vec<u8>,
    keys: &WebhookKeys,
) -> OutgoingRequest {
    let headers = webhook_headers(msg_id, timestamp, &body, keys);
    OutgoingRequest { url, headers, body }
}

/// The headers as an execution record (or a preview) shows them: the access token as
/// `Bearer ***`, `User-Agent` added. Signatures stay: they are MACs, not secrets.
pub fn recorded_headers(headers: &[(String, String)]) -> BTreeMap<String, String> {
    let mut shown: BTreeMap<String, String> = headers
        .iter()
        .map(|(name, value)| {
            let value = if name.eq_ignore_ascii_case(AUTHORIZATION) { format!("Bearer {MASK}") } else { value.clone() };
            (name.clone(), value)
        })
        .collect();
    shown.insert("User-Agent".to_owned(), USER_AGENT.to_owned());
    shown
}

/// A secret URL (a Slack incoming webhook) as records show it: scheme, host and port, then `/***`.
pub fn masked_url(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}/{MASK}", url.scheme()),
        None => format!("{}://{host}/{MASK}", url.scheme()),
    }
}

/// Replaces every occurrence of each secret in `text` with `***`: a receiver that echoes the
/// request back must not get a secret into the attempt log.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    // Longest first, so a secret containing another is masked whole. Values under 4 bytes
    // would mask ordinary text everywhere and protect nothing.
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 4).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        if out.contains(secret) {
            out = out.replace(secret, MASK);
        }
    }
    out
}

/// The names a payload template of `webhook` may use as secrets, for `Template::compile`.
pub fn template_secret_names(webhook: &Webhook) -> crate::render::template::SecretNames<'_> {
    crate::render::template::SecretNames {
        secret: webhook.secret.as_ref().map(SecretName::as_str),
        has_access_token: webhook.access_token_secret.is_some(),
    }
}

/// A webhook's secret values, loaded from the secret store.
pub struct WebhookSecrets {
    pub signing: SigningSecret,
    pub access_token: Option<SecretValue>,
    /// The payload secret and its name (usable as `$NAME` in the payload).
    pub payload_secret: Option<(SecretName, SecretValue)>,
}

impl WebhookSecrets {
    pub fn keys(&self) -> WebhookKeys<'_> {
        WebhookKeys {
            signing: &self.signing,
            access_token: self.access_token.as_ref(),
            payload_secret: self.payload_secret.as_ref().map(|(_, v)| v),
        }
    }

    /// The value of a secret a payload template names: [`ACCESS_TOKEN`] is the access token
    /// (or, without one, a payload secret of that name), any other name the payload secret.
    pub fn value_of(&self, name: &str) -> Option<String> {
        let payload = self.payload_secret.as_ref().filter(|(n, _)| n.as_str() == name).map(|(_, v)| v);
        let value = if name == ACCESS_TOKEN { self.access_token.as_ref().or(payload) } else { payload };
        value.map(|v| v.expose().to_owned())
    }

    /// Every value, for [`redact`].
    pub fn values(&self) -> Vec<&str> {
        let mut values = vec![self.signing.expose()];
        values.extend(self.access_token.as_ref().map(SecretValue::expose));
        values.extend(self.payload_secret.as_ref().map(|(_, v)| v.expose()));
        values
    }
}

impl App {
    /// Loads a webhook's secrets. `Ok(Err(reason))` when one is missing or unreadable (the
    /// reason names the secret, never a value); `Err` when the store failed.
    pub async fn webhook_secrets(
        &self,
        team: &TeamName,
        webhook: &Webhook,
    ) -> AppResult<Result<WebhookSecrets, String>> {
        let Some(signing) = self.secrets.get(&secret_path::webhook_signing(team, &webhook.id)).await? else {
            return Ok(Err("the webhook has no signing secret; rotate it to create one".to_owned()));
        };
        let Ok(signing) = SigningSecret::parse(signing.expose()) else {
            return Ok(Err("the webhook's signing secret is unreadable; rotate it".to_owned()));
        };
        let access_token = match &webhook.access_token_secret {
            Some(name) => match self.secrets.get(&secret_path::team_secret(team, name)).await? {
                Some(value) => Some(value),
                None => return Ok(Err(format!("the access token secret {name} no longer exists"))),
            },
            None => None,
        };
        let payload_secret = match &webhook.secret {
            Some(name) => match self.secrets.get(&secret_path::team_secret(team, name)).await? {
                Some(value) => Some((name.clone(), value)),
                None => return Ok(Err(format!("the secret {name} no longer exists"))),
            },
            None => None,
        };
        Ok(Ok(WebhookSecrets { signing, access_token, payload_secret }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::signature::verify_standard_webhooks;

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn headers_carry_both_signatures_and_the_bearer_token() {
        let signing = SigningSecret::generate();
        let token = SecretValue::new("tok-canary").unwrap();
        let secret = SecretValue::new("hmac-key").unwrap();
        let keys = WebhookKeys { signing: &signing, access_token: Some(&token), payload_secret: Some(&secret) };
        let body = br#"{"a":1}"#;
        let headers = webhook_headers("ex_1", 1_700_000_000, body, &keys);

        assert_eq!(header(&headers, CONTENT_TYPE), Some("application/json"));
        assert_eq!(header(&headers, AUTHORIZATION), Some("Bearer tok-canary"));
        assert_eq!(header(&headers, WANDB_SIGNATURE), Some(wandb_signature(b"hmac-key", body).as_str()));
        assert_eq!(header(&headers, WEBHOOK_ID), Some("ex_1"));
        assert_eq!(header(&headers, WEBHOOK_TIMESTAMP), Some("1700000000"));
        let signature = header(&headers, WEBHOOK_SIGNATURE).unwrap();
        assert!(verify_standard_webhooks(&signing, "ex_1", 1_700_000_000, body, signature));
    }

    #[test]
    fn without_token_or_secret_only_standard_webhooks_headers_are_sent() {
        let signing = SigningSecret::generate();
        let keys = WebhookKeys { signing: &signing, access_token: None, payload_secret: None };
        let headers = webhook_headers("ex_1", 1, b"{}", &keys);
        let names: Vec<_> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [CONTENT_TYPE, WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE]);
    }

    #[test]
    fn recorded_headers_mask_the_token_and_keep_the_signatures() {
        let signing = SigningSecret::generate();
        let token = SecretValue::new("tok-canary").unwrap();
        let keys = WebhookKeys { signing: &signing, access_token: Some(&token), payload_secret: None };
        let shown = recorded_headers(&webhook_headers("ex_1", 1, b"{}", &keys));
        assert_eq!(shown[AUTHORIZATION], "Bearer ***");
        assert!(shown[WEBHOOK_SIGNATURE].starts_with("v1,"));
        assert_eq!(shown["User-Agent"], USER_AGENT);
        assert!(!format!("{shown:?}").contains("tok-canary"));
    }

    #[test]
    fn secret_urls_show_only_scheme_and_host() {
        let url = Url::parse("https://hooks.slack.com/services/T0/B0/XYZsecret").unwrap();
        assert_eq!(masked_url(&url), "https://hooks.slack.com/***");
        let local = Url::parse("http://127.0.0.1:9000/services/T0/B0/XYZ").unwrap();
        assert_eq!(masked_url(&local), "http://127.0.0.1:9000/***");
    }

    #[test]
    fn redact_masks_every_occurrence_of_every_secret() {
        let text = "echo: Bearer tok-canary and tok-canary-long";
        assert_eq!(redact(text, &["tok-canary", "tok-canary-long"]), "echo: Bearer *** and ***");
        assert_eq!(redact("nothing here", &["tok-canary"]), "nothing here");
    }
}
