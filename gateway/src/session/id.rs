//! Session identifiers.

use base64::Engine;

/// An `MCP-Session-Id`: 256 bits from the OS CSPRNG, base64url. Unguessable, so knowing a
/// session id is the capability to use it; visible ASCII as the spec requires, and valid as a
/// KV key as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

/// Longest header value we look up; anything longer cannot be one of ours.
const MAX_LEN: usize = 128;

impl SessionId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts a client-supplied id if it could be one of ours. Anything else is simply an
    /// unknown session; it never reaches the KV store as a malformed key.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_random_and_parse_back() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert_eq!(SessionId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn foreign_ids_are_refused() {
        for bad in ["", "a.b", "a b", "*", ">", "ä", &"x".repeat(200)] {
            assert!(SessionId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
