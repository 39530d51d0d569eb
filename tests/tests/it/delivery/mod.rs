//! Suite: delivery (cases are added with its issue).
