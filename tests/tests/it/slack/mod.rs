//! Suite: slack (cases are added with its issue).
