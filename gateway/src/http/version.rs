//! The MCP revisions this gateway speaks, per lane, and the header names that carry them.

/// Session-lane revisions, oldest first.
pub const SESSION_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];

/// Assumed when a session-lane request carries no `MCP-Protocol-Version` header, as the
/// 2025-06-18 transport allows for clients of 2025-03-26.
pub const DEFAULT_SESSION_VERSION: &str = "2025-03-26";

/// Stateless-lane revisions.
pub const STATELESS_VERSIONS: [&str; 1] = ["2026-07-28"];

/// Every revision, newest first, as `server/discover` and `-32022` list them.
pub fn all_versions() -> Vec<&'static str> {
    STATELESS_VERSIONS
        .iter()
        .rev()
        .chain(SESSION_VERSIONS.iter().rev())
        .copied()
        .collect()
}

/// `initialize` negotiation: the client's revision if we speak it, else our newest.
pub fn negotiate_session(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| SESSION_VERSIONS.iter().find(|v| **v == r))
        .copied()
        .unwrap_or(SESSION_VERSIONS[SESSION_VERSIONS.len() - 1])
}

pub mod header {
    pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
    pub const SESSION_ID: &str = "mcp-session-id";
    pub const METHOD: &str = "mcp-method";
    pub const NAME: &str = "mcp-name";
}

/// `_meta` keys of the stateless lane.
pub mod meta {
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_falls_back_to_the_newest_session_revision() {
        assert_eq!(negotiate_session(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate_session(Some("2026-07-28")), "2025-11-25");
        assert_eq!(negotiate_session(None), "2025-11-25");
        assert_eq!(all_versions()[0], "2026-07-28");
    }
}
