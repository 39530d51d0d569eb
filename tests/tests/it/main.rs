//! One integration test binary (svix's `tests/it` layout): every suite is a module here, so the
//! workspace links one test executable instead of one per file.

mod api;
mod common;
mod conformance;
mod delivery;
mod ingest;
mod slack;
