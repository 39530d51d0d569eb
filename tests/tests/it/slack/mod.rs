//! Suite: slack. Registering the Slack app and connecting a channel through OAuth v2
//! (DESIGN §9), against a fake Slack on 127.0.0.1.

mod connect;
mod failures;
mod registration;
pub mod support;
