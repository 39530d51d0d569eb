//! Suite: the config API (DESIGN §8): roles, validation, conflicts, paging, problem+json,
//! the webhook test request, OpenAPI, and that no secret value ever comes back.

mod automations;
mod errors;
mod preview;
mod secrets;
mod slack_integrations;
mod support;
mod system;
mod webhooks;
