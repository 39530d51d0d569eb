//! The service's configuration, read once at start (DESIGN §11).

use crate::delivery::retry::RetryPolicy;
use crate::delivery::ssrf::AllowedNetworks;

/// Settings every use case may read. Built by `crate::startup` from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where browsers reach this service (`PUBLIC_BASE_URL`), without a trailing slash.
    pub public_base_url: String,
    /// Slack's web base for the authorize page (`SLACK_BASE_URL`, default https://slack.com).
    pub slack_base_url: String,
    /// Slack's API base for `oauth.v2.access` (`SLACK_API_BASE_URL`, default https://slack.com).
    pub slack_api_base_url: String,
    /// Where to send the browser after a successful Slack connect, instead of a page.
    pub slack_success_redirect: Option<String>,
    /// Private networks deliveries may reach (`AUTOMATIONS_ALLOWED_NETWORKS`).
    pub allowed_networks: AllowedNetworks,
    /// Retry schedule and jitter (`RETRY_SCHEDULE`).
    pub retry: RetryPolicy,
    /// The local process over plain http: cookies are not marked Secure.
    pub insecure_cookies: bool,
}

impl Config {
    /// Settings for tests and the local default: loopback allowed, default schedule.
    pub fn local(public_base_url: impl Into<String>) -> Self {
        Self {
            public_base_url: public_base_url.into().trim_end_matches('/').to_owned(),
            slack_base_url: "https://slack.com".into(),
            slack_api_base_url: "https://slack.com".into(),
            slack_success_redirect: None,
            allowed_networks: AllowedNetworks::loopback(),
            retry: RetryPolicy::default(),
            insecure_cookies: true,
        }
    }
}
