//! Automations: when something happens in an experiment-tracking platform and an automation's
//! conditions hold, post a Slack message or call a webhook.
//!
//! Layers, imports pointing down only: `domain` ← `engine`, `render`, `delivery`, `ports` ←
//! `app` ← `http`; `backends` implement `ports`. See docs/architecture.md.

pub mod app;
pub mod backends;
pub mod delivery;
pub mod domain;
pub mod engine;
pub mod http;
pub mod ports;
pub mod render;
pub mod startup;
