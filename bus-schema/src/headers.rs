//! NATS message header names. Bodies are JSON and carry the whole contract; headers exist only
//! where the server itself or NATS tooling needs to see a value without parsing the body.

/// JetStream de-duplication key: the call id. A gateway that retries a publish after a lost
/// acknowledgement reuses it, so the stream stores the call once and it runs once.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// The worker protocol version of the message (same value as the body's `protocol` field).
pub const PROTOCOL: &str = "Mcpbus-Protocol";

/// The MCP method a call carries (`tools/call`), so that `nats stream view` is readable.
pub const METHOD: &str = "Mcpbus-Method";

/// Set by JetStream on republished copies: the stream sequence of the stored message.
pub const SEQUENCE: &str = "Nats-Sequence";

/// Set by JetStream on republished copies: the previous sequence on the same subject (0 if
/// none). A reader that sees one beyond what it has delivered knows it missed something.
pub const LAST_SEQUENCE: &str = "Nats-Last-Sequence";

/// W3C Trace Context parent (`00-<trace id>-<parent span id>-<flags>`), on every bus message
/// of a call: the call request, the stream's open record, the worker's replies, cancels and
/// the client's answers. The same name as the HTTP header and the SEP-414 `_meta` key
/// (PROTOCOL.md §11, ADR 0020). Optional: a message without it starts no trace.
pub const TRACEPARENT: &str = "traceparent";

/// W3C Trace Context vendor state, passed on beside [`TRACEPARENT`] untouched.
pub const TRACESTATE: &str = "tracestate";
