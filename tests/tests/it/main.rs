//! One integration test binary (svix's `tests/it` layout): every suite is a module here, so the
//! workspace links one test executable instead of one per file.

#[macro_use]
mod common;

mod api;
mod conformance;
mod delivery;
mod e2e;
mod ingest;
mod reliability;
mod slack;
