//! The storage and time ports the use cases are written against. Backends implement them in
//! `crate::backends`; nothing here knows which one runs.

pub mod clock;
pub mod error;
pub mod queue;
pub mod secrets;
pub mod table;
