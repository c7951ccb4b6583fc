//! MCP revisions: ordered, so that "from 2025-11-25 on" is a comparison of values rather
//! than of strings, and grouped by lane.

use std::fmt;

/// A revision of the MCP specification that mcpbus speaks. Ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

/// A revision string mcpbus does not speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported MCP revision {0:?}")]
pub struct UnknownVersion(pub String);

impl ProtocolVersion {
    /// Every revision, oldest first.
    pub const ALL: [ProtocolVersion; 4] = [
        Self::V2025_03_26,
        Self::V2025_06_18,
        Self::V2025_11_25,
        Self::V2026_07_28,
    ];

    /// The session revisions (2025: `initialize`, `MCP-Session-Id`), oldest first.
    pub const SESSION: [ProtocolVersion; 3] =
        [Self::V2025_03_26, Self::V2025_06_18, Self::V2025_11_25];

    /// The stateless revisions (2026-07-28 on: `_meta` on every request).
    pub const STATELESS: [ProtocolVersion; 1] = [Self::V2026_07_28];

    /// Assumed for a session-lane request without `MCP-Protocol-Version`, as the 2025-06-18
    /// transport allows for clients of 2025-03-26.
    pub const DEFAULT_SESSION: ProtocolVersion = Self::V2025_03_26;

    /// The first revision with tasks (2025-11-25, experimental).
    pub const TASKS: ProtocolVersion = Self::V2025_11_25;

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownVersion> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVersion(s.to_owned()))
    }

    /// Whether this revision is stateless (no sessions, `_meta` on every request).
    pub fn is_stateless(self) -> bool {
        self >= Self::V2026_07_28
    }

    /// The newest session revision: what `initialize` falls back to.
    pub fn newest_session() -> Self {
        Self::SESSION[Self::SESSION.len() - 1]
    }

    /// `initialize` negotiation: the client's revision if it is a session revision we speak,
    /// else our newest session revision.
    pub fn negotiate_session(requested: &str) -> Self {
        Self::parse(requested)
            .ok()
            .filter(|v| !v.is_stateless())
            .unwrap_or_else(Self::newest_session)
    }

    /// Every revision, newest first, as `server/discover` and -32022 list them.
    pub fn all_newest_first() -> Vec<&'static str> {
        Self::ALL.iter().rev().map(|v| v.as_str()).collect()
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProtocolVersion {
    type Err = UnknownVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_order_by_date_and_lane() {
        assert!(ProtocolVersion::V2025_11_25 >= ProtocolVersion::TASKS);
        assert!(ProtocolVersion::V2025_06_18 < ProtocolVersion::TASKS);
        assert!(ProtocolVersion::V2026_07_28.is_stateless());
        assert!(!ProtocolVersion::V2025_11_25.is_stateless());
        assert_eq!(
            ProtocolVersion::negotiate_session("2025-06-18"),
            ProtocolVersion::V2025_06_18
        );
        assert_eq!(
            ProtocolVersion::negotiate_session("2026-07-28"),
            ProtocolVersion::V2025_11_25
        );
        assert_eq!(ProtocolVersion::all_newest_first()[0], "2026-07-28");
        assert!(ProtocolVersion::parse("2024-11-05").is_err());
        for v in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::parse(v.as_str()), Ok(v));
        }
    }
}
