//! The HTTP header names of the MCP transport. (Revisions themselves are
//! `bus_schema::mcp::ProtocolVersion`.)

pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const SESSION_ID: &str = "mcp-session-id";
pub const METHOD: &str = "mcp-method";
pub const NAME: &str = "mcp-name";
