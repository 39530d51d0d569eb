//! Shared set-up for the suites.

pub mod stores;
