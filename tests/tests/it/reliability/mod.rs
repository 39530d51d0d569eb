//! Suite: reliability and security (docs/reliability.md). Fault injection against the real
//! `automations` process, load with a flaky receiver, the SSRF and secret audits and OAuth
//! abuse. Each suite prints one `reliability-figures:` line that `infra/reliability.sh` collects.

mod faults;
mod load;
mod oauth;
mod secrets;
mod ssrf;
mod support;
