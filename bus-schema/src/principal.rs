//! Who is calling, as the gateway verified it from the client's access token.
//!
//! The gateway puts this on every call it publishes ([`crate::messages::CallRequest`]), so a
//! worker knows its caller without ever seeing the token: the MCP specification forbids
//! passing a client's token through, and a token on the bus could be replayed by anyone
//! who reads it. Only what the gateway checked travels: the issuer and subject (together the
//! principal's identity), the granted scopes, and the claims the operator allow-listed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A verified caller. Two principals are the same caller when issuer and subject agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Principal {
    /// The token's `iss`: the authorization server that vouched for the subject.
    pub issuer: String,
    /// The token's `sub` (or, for an introspected token without one, its `client_id`).
    pub subject: String,
    /// Scopes granted to the token, in the order the authorization server listed them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Allow-listed claims copied from the token (e.g. `groups`), for policy and workers.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Value>,
}

impl Principal {
    /// The identity handles are bound to: issuer and subject, unambiguous when either holds
    /// a space (the issuer is length-prefixed).
    pub fn key(&self) -> String {
        format!("{}:{}{}", self.issuer.len(), self.issuer, self.subject)
    }

    /// Whether the token was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(issuer: &str, subject: &str) -> Principal {
        Principal {
            issuer: issuer.into(),
            subject: subject.into(),
            scopes: vec![],
            claims: Map::new(),
        }
    }

    #[test]
    fn the_key_cannot_be_forged_by_moving_text_between_issuer_and_subject() {
        assert_ne!(p("https://a", "bc").key(), p("https://ab", "c").key());
        assert_eq!(p("https://a", "bc").key(), p("https://a", "bc").key());
    }
}
