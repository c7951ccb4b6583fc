//! JSON-RPC and MCP error codes: the one set gateways and workers emit.

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Resource not found, in the 2025 revisions (2026-07-28 uses [`INVALID_PARAMS`]).
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// 2026-07-28 `HeaderMismatch`.
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28 `MissingRequiredClientCapability`.
pub const MISSING_CAPABILITY: i64 = -32021;
/// 2026-07-28 `UnsupportedProtocolVersion`.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// mcpbus: a per-client quota refused the request (sent with HTTP 429 and `Retry-After`);
/// `data.limit` names the quota. In JSON-RPC's implementation-defined server error range.
pub const QUOTA_EXCEEDED: i64 = -32000;
