//! Validation faults, named by the JSON path of the field they concern.

use serde::Serialize;

/// One invalid field: `field` is the full JSON path in the request body
/// (`event.filter.run.name.$regex`, `[3].team`), `message` says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The same fault seen from an enclosing object: `prefix` joined before the path.
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = join_path(prefix, &self.field);
        self
    }
}

/// Joins JSON path segments: `a` + `b` = `a.b`, `a` + `[1].b` = `a[1].b`, `` + `b` = `b`.
pub fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => prefix.to_owned(),
        _ if rest.starts_with('[') => format!("{prefix}{rest}"),
        _ => format!("{prefix}.{rest}"),
    }
}

/// Domain validation failed: one or more fields are invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", summary(.0))]
pub struct Invalid(pub Vec<FieldError>);

fn summary(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

impl Invalid {
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }

    pub fn under(self, prefix: &str) -> Self {
        Self(self.0.into_iter().map(|e| e.under(prefix)).collect())
    }
}

/// Collects faults across several checks so a client sees all of them at once.
#[derive(Debug, Default)]
pub struct Faults(Vec<FieldError>);

impl Faults {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn extend(&mut self, other: Invalid) {
        self.0.extend(other.0);
    }

    /// Records the error of `r`, if any, and returns its value.
    pub fn take<T>(&mut self, r: Result<T, Invalid>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.extend(e);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Invalid> {
        if self.0.is_empty() { Ok(value()) } else { Err(Invalid(self.0)) }
    }

    pub fn into_invalid(self) -> Invalid {
        Invalid(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_with_dots_and_brackets() {
        assert_eq!(join_path("event", "filter.a"), "event.filter.a");
        assert_eq!(join_path("", "team"), "team");
        assert_eq!(join_path("[3]", "team"), "[3].team");
        assert_eq!(join_path("payload", "[0].x"), "payload[0].x");
        assert_eq!(join_path("name", ""), "name");
    }
}
