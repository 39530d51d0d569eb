//! Team secrets: metadata lives in the table, values only in the secret store.

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::error::Invalid;
use super::names::SecretName;

/// The largest secret value accepted (Secrets Manager allows 64 KiB).
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// A secret value. Its `Debug` shows `***`; it has no `Display` and is never serialized,
/// so it cannot reach a response, a log line or an error by accident.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    /// Accepts a value of 1 byte to 64 KiB.
    pub fn new(value: impl Into<String>) -> Result<Self, Invalid> {
        let value: String = value.into();
        if value.is_empty() {
            return Err(Invalid::one("value", "must not be empty"));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(Invalid::one("value", "must be at most 64 KiB"));
        }
        Ok(Self(SecretString::from(value)))
    }

    /// The value itself, for the few places that must use it (signing, headers, storage).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// What the API shows of a secret: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretMeta {
    pub name: SecretName,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_value() {
        let v = SecretValue::new("hunter2-canary").unwrap();
        assert!(!format!("{v:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(v.clone())).contains("hunter2"));
        assert_eq!(v.expose(), "hunter2-canary");
    }

    #[test]
    fn values_over_64_kib_are_refused() {
        assert!(SecretValue::new("x".repeat(MAX_SECRET_BYTES)).is_ok());
        assert!(SecretValue::new("x".repeat(MAX_SECRET_BYTES + 1)).is_err());
        assert!(SecretValue::new("").is_err());
    }
}
