//! Ingest: events in, matching automations fire executions and delivery jobs (DESIGN §4, §5, §10).

mod artifacts;
mod crash;
mod dead_letter;
mod http;
mod metrics;
mod runs;
mod support;
