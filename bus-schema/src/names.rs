//! Names that become NATS subject tokens or KV keys: worker pools and instances.
//!
//! They are validated at the edge (worker registration, gateway intake) so that a name can
//! never inject a wildcard (`*`, `>`) or an extra token (`.`) into a subject.

use std::fmt;

/// Longest pool or instance name we accept. Subjects and consumer names stay well under the
/// server's limits even with our prefixes.
pub const MAX_NAME_LEN: usize = 64;

/// What `check` accepts, as a JSON Schema pattern (with `MAX_NAME_LEN`).
const NAME_PATTERN: &str = "^[A-Za-z0-9_-]+$";

/// Why a pool or instance name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("name {0:?} may contain only ASCII letters, digits, '-' and '_'")]
    BadCharacter(String),
}

fn check(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(NameError::BadCharacter(name.to_owned()));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $t:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $t(String);

        impl $t {
            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                check(&name)?;
                Ok(Self(name))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $t {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl From<$t> for String {
            fn from(n: $t) -> String {
                n.0
            }
        }

        impl schemars::JsonSchema for $t {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($t).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": NAME_PATTERN,
                    "minLength": 1,
                    "maxLength": MAX_NAME_LEN,
                })
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A worker pool: every replica that serves the same catalogue under the same name.
    /// Replicas of a pool share one durable consumer, so a pool is the unit of routing and
    /// scaling.
    PoolName
);

name_type!(
    /// One running process: a worker instance inside a pool, or a gateway node.
    InstanceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_metacharacters_are_refused() {
        for bad in ["a.b", "a*", ">", "a b", "", "é"] {
            assert!(PoolName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(PoolName::new("x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert_eq!(
            PoolName::new("demo_pool-1").unwrap().as_str(),
            "demo_pool-1"
        );
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<PoolName>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<PoolName>("\"no.dots\"").is_err());
    }
}
