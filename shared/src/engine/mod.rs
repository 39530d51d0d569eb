//! Pure decision logic: filters, metric windows, matching. No storage, network or clock of its own.

pub mod filter;
pub mod matching;
pub mod window;
