//! Suite: delivery (DESIGN §7) and its history API (§8), with receivers on 127.0.0.1.

mod history;
mod jobs;
mod secrets;
mod slack;
mod support;
mod webhook;
