//! Suite: api (cases are added with its issue).
