//! `_meta` keys: the MCP ones, and the ones mcpbus adds. Nobody else spells them.

/// 2026-07-28: the request's revision (every request carries it).
pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// 2026-07-28: the client's capabilities (every request carries them).
pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// 2026-07-28: the client's name and version.
pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// 2026-07-28: the server's name and version, on every result.
pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// 2026-07-28: the lowest log severity the client wants for this request.
pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// 2026-07-28: which `subscriptions/listen` stream a notification belongs to.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// 2025-11-25: the task a request to the client, or a result, belongs to.
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";
/// The request's progress token (all revisions).
pub const PROGRESS_TOKEN: &str = "progressToken";
