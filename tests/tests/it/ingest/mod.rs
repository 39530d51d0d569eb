//! Suite: ingest (cases are added with its issue).
