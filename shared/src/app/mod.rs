//! Use cases: what the functions and the local process call. Written against the ports only;
//! which backend runs is chosen by `functions/*` and `local/`.

pub mod admin;
pub mod auth;
pub mod automations;
pub mod config;
pub mod deliver;
pub mod error;
pub mod history;
pub mod ingest;
pub mod integrations;
pub mod jobs;
pub mod preview;
pub mod repo;
pub mod secrets;
pub mod slack_oauth;
pub mod webhooks;
pub mod worker;

use std::sync::Arc;

use crate::delivery::sender::Sender;
use crate::ports::clock::Clock;
use crate::ports::queue::Queue;
use crate::ports::secrets::SecretStore;
use config::Config;
use repo::Repo;

/// Everything a use case needs, built once at start and cloned cheaply into handlers.
#[derive(Clone)]
pub struct App {
    pub repo: Repo,
    /// Already wrapped in the 5-minute cache.
    pub secrets: Arc<dyn SecretStore>,
    /// Producers' events (SQS events queue or the local one).
    pub events: Arc<dyn Queue>,
    /// Where ingest moves a message it can never process, with its reason.
    pub events_dlq: Arc<dyn Queue>,
    /// Delivery jobs.
    pub deliveries: Arc<dyn Queue>,
    /// Where deliver moves a job it can never process.
    pub deliveries_dlq: Arc<dyn Queue>,
    /// The one HTTP sender (SSRF guard, timeouts), shared by delivery and the webhook test.
    pub sender: Arc<Sender>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
}
