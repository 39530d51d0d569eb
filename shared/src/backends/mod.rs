//! Implementations of the ports: AWS (DynamoDB, SQS, Secrets Manager) and the embedded SQLite store.

pub mod aws;
pub mod sqlite;
