//! Webhooks: a URL with at most one access token secret and one payload secret (W&B rules).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::error::{Faults, Invalid};
use super::names::{ObjectId, SecretName, WebhookName};

/// A team's webhook. The signing key lives in the secret store, not here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: ObjectId,
    pub name: WebhookName,
    pub url: String,
    /// Name of the team secret sent as `Authorization: Bearer …` and usable as `${ACCESS_TOKEN}`.
    pub access_token_secret: Option<SecretName>,
    /// Name of the team secret that signs bodies (`X-Wandb-Signature`) and is usable as `$NAME`.
    pub secret: Option<SecretName>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl Webhook {
    /// Secret names this webhook refers to.
    pub fn secret_names(&self) -> impl Iterator<Item = &SecretName> {
        self.access_token_secret.iter().chain(self.secret.iter())
    }
}

/// Accepts only absolute http(s) URLs with a host. Where they may point is checked at send time.
pub fn validate_url(url: &str) -> Result<url::Url, Invalid> {
    let parsed = url::Url::parse(url).map_err(|e| Invalid::one("url", format!("is not a valid URL: {e}")))?;
    let mut faults = Faults::default();
    if !matches!(parsed.scheme(), "http" | "https") {
        faults.push("url", "must use http or https");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        faults.push("url", "must have a host");
    }
    if url.len() > 2048 {
        faults.push("url", "must be at most 2048 characters");
    }
    faults.finish(|| parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_are_accepted() {
        assert!(validate_url("https://example.com/hook").is_ok());
        assert!(validate_url("http://127.0.0.1:9000/x").is_ok());
        assert!(validate_url("ftp://example.com").is_err());
        assert!(validate_url("not a url").is_err());
    }
}
