//! One conformance suite for both backends: every case runs on SQLite and on AWS (moto), and
//! both must behave the same way (DESIGN §10).

mod queue;
mod secrets;
mod table;
