//! Rendering (DESIGN §6, §7 Slack): template variables computed from an event, payload and text
//! templates compiled at save time and rendered at delivery time, and the Slack Block Kit
//! message. Pure: no storage, no network, no clock.

pub mod slack;
pub mod template;
pub mod variables;
