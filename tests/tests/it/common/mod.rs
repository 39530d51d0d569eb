//! Shared set-up for the suites.

#![allow(dead_code)]

pub mod app;
pub mod stores;
