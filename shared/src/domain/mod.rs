//! The ground floor: types, names and their validation. Depends on nothing else in the crate.

pub mod automation;
pub mod error;
pub mod event;
pub mod execution;
pub mod metric;
pub mod names;
pub mod secret;
pub mod slack;
pub mod team;
pub mod webhook;
