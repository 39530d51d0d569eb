//! Validated names and identifiers. Every key part taken from a user passes through one of these,
//! so none can contain the `#` that separates parts of a storage key.

use std::sync::LazyLock;

use regex::Regex;

use super::error::Invalid;

/// Declares a string newtype that validates on construction and (de)serializes as a string.
macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value`; the error's field is empty so callers can name it.
            pub fn parse(value: impl Into<String>) -> Result<Self, Invalid> {
                let value = value.into();
                let check: fn(&str) -> Result<(), String> = $check;
                match check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(message) => Err(Invalid::one("", message)),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(value).map_err(|e| e.0.into_iter().map(|f| f.message).collect::<Vec<_>>().join("; "))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                String::schema()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

/// Compiles a pattern written in this file; a typo in one is a bug caught by the first test.
#[allow(clippy::expect_used)]
fn static_regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("patterns in names.rs compile")
}

fn pattern(re: &'static LazyLock<Regex>, value: &str, what: &str) -> Result<(), String> {
    if re.is_match(value) { Ok(()) } else { Err(format!("{what} (pattern {})", re.as_str())) }
}

static SLUG: LazyLock<Regex> = LazyLock::new(|| static_regex(r"^[a-z0-9][a-z0-9_-]{0,62}$"));
static SECRET: LazyLock<Regex> = LazyLock::new(|| static_regex(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"));
static WEBHOOK: LazyLock<Regex> = LazyLock::new(|| static_regex(r"^[-\w]+([ ]+[-\w]+)*$"));
static PROJECT: LazyLock<Regex> = LazyLock::new(|| static_regex(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"));
static EVENT_ID: LazyLock<Regex> = LazyLock::new(|| static_regex(r"^[A-Za-z0-9._:-]{1,128}$"));
static ID: LazyLock<Regex> = LazyLock::new(|| static_regex(r"^[a-z]{2}_[0-9A-Za-z]{10,64}$"));

validated_string!(
    /// A team (W&B "entity"): lowercase letters, digits, `_` and `-`, at most 63 characters.
    TeamName,
    |v| pattern(&SLUG, v, "must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit")
);
validated_string!(
    /// A user name: the same rule as a team name.
    UserName,
    |v| pattern(&SLUG, v, "must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit")
);
validated_string!(
    /// A team secret's name: a valid variable name, so it can be referenced as `$NAME`.
    SecretName,
    |v| pattern(&SECRET, v, "must start with a letter or '_' and contain only letters, digits and '_', at most 64 characters")
);
validated_string!(
    /// A webhook name (W&B rule): words of letters, digits, `_` and `-`, separated by spaces.
    WebhookName,
    |v| {
        if v.chars().count() > 64 {
            return Err("must be at most 64 characters".into());
        }
        pattern(&WEBHOOK, v, "must be words of letters, digits, '_' or '-' separated by single spaces")
    }
);
validated_string!(
    /// A project, registry or collection name.
    ProjectName,
    |v| pattern(&PROJECT, v, "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
);
validated_string!(
    /// An automation's name: 1-255 characters, not blank.
    AutomationName,
    |v| {
        if v.trim().is_empty() {
            Err("must not be blank".into())
        } else if v.chars().count() > 255 {
            Err("must be at most 255 characters".into())
        } else {
            Ok(())
        }
    }
);
validated_string!(
    /// A producer's event id: unique within the team, the dedupe key.
    EventId,
    |v| pattern(&EVENT_ID, v, "must be 1-128 characters of letters, digits, '.', '_', ':' or '-'")
);
validated_string!(
    /// A generated object id: a two-letter kind, `_`, then a ULID or hash (`wh_01J…`).
    ObjectId,
    |v| pattern(&ID, v, "is not a valid id")
);

/// Registry `R` lives in the project `wandb-registry-R` (W&B convention).
pub const REGISTRY_PROJECT_PREFIX: &str = "wandb-registry-";

impl ProjectName {
    /// The registry this project stands for, if it is a registry project.
    pub fn registry(&self) -> Option<&str> {
        self.0.strip_prefix(REGISTRY_PROJECT_PREFIX).filter(|r| !r.is_empty())
    }

    /// The project that holds registry `registry`.
    pub fn of_registry(registry: &ProjectName) -> Result<ProjectName, Invalid> {
        ProjectName::parse(format!("{REGISTRY_PROJECT_PREFIX}{registry}"))
    }
}

impl ObjectId {
    /// A new id of `kind` (`wh`, `si`, `au`): kind + `_` + a ULID, so ids sort by creation time.
    pub fn generate(kind: &str) -> ObjectId {
        ObjectId(format!("{kind}_{}", ulid::Ulid::generate()))
    }

    /// The kind prefix (`wh`, `si`, `au`, `ex`).
    pub fn kind(&self) -> &str {
        self.0.split('_').next().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_names_follow_the_slug_rule() {
        assert!(TeamName::parse("ml-team_1").is_ok());
        assert!(TeamName::parse("ML").is_err());
        assert!(TeamName::parse("-x").is_err());
        assert!(TeamName::parse("a#b").is_err());
        assert!(TeamName::parse("a".repeat(64)).is_err());
    }

    #[test]
    fn secret_names_are_variable_names_of_at_most_64() {
        assert!(SecretName::parse("GITHUB_TOKEN").is_ok());
        assert!(SecretName::parse("_x1").is_ok());
        assert!(SecretName::parse("1x").is_err());
        assert!(SecretName::parse("a-b").is_err());
        assert!(SecretName::parse("a".repeat(65)).is_err());
    }

    #[test]
    fn webhook_names_are_words_separated_by_spaces() {
        assert!(WebhookName::parse("deploy hook-1").is_ok());
        assert!(WebhookName::parse(" lead").is_err());
        assert!(WebhookName::parse("trail ").is_err());
        assert!(WebhookName::parse("a/b").is_err());
        assert!(WebhookName::parse("x".repeat(65)).is_err());
    }

    #[test]
    fn registry_projects_use_the_wandb_prefix() {
        let p = ProjectName::parse("wandb-registry-models").unwrap();
        assert_eq!(p.registry(), Some("models"));
        assert_eq!(ProjectName::parse("llm").unwrap().registry(), None);
    }

    #[test]
    fn event_ids_reject_key_separators() {
        assert!(EventId::parse("evt_01J:abc.1-2").is_ok());
        assert!(EventId::parse("a#b").is_err());
        assert!(EventId::parse("").is_err());
    }

    #[test]
    fn generated_ids_carry_their_kind() {
        let id = ObjectId::generate("wh");
        assert_eq!(id.kind(), "wh");
        assert!(ObjectId::parse(id.as_str()).is_ok());
    }

    #[test]
    fn names_deserialize_through_validation() {
        assert!(serde_json::from_str::<TeamName>("\"Bad Team\"").is_err());
        let t: TeamName = serde_json::from_str("\"good\"").unwrap();
        assert_eq!(t.as_str(), "good");
    }
}
