//! How a single call ends without a result of its own. Three different things, kept apart
//! because the client sees each differently:
//!
//! - [`ToolError`]: the tool failed. The client gets a result with `isError: true` and the
//!   message, so that a model can read it and try again.
//! - [`ProtocolError`]: the request itself is wrong. The client gets a JSON-RPC error with a
//!   code from [`bus_schema::mcp::code`].
//! - [`InputRequired`]: not a failure: the handler stopped to ask the client (2026-07-28
//!   multi round-trip requests) and the call answers with an `InputRequiredResult`.
//!
//! Handlers return [`CallError`], which joins the three; `?` converts each into it.

use bus_schema::mcp::code;
use bus_schema::messages::WireError;
use serde_json::{json, Value};

/// What a handler's failure is: see the module documentation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    InputRequired(#[from] InputRequired),
}

/// A tool that failed: the client gets a result with `isError: true` and this message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    pub message: String,
}

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The MCP `CallToolResult` of the failure.
    pub(crate) fn into_result(self) -> Value {
        json!({"content": [{"type": "text", "text": self.message}], "isError": true})
    }
}

/// A JSON-RPC error the client gets instead of a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ProtocolError {
    /// One of [`bus_schema::mcp::code`].
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl ProtocolError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds the error's `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The request needs a client capability the client did not declare:
    /// `MissingRequiredClientCapability` (2026-07-28) with `data.requiredCapabilities`.
    pub fn missing_capability(capability: &str, message: impl Into<String>) -> Self {
        Self::new(code::MISSING_CAPABILITY, message)
            .with_data(json!({"requiredCapabilities": {capability: {}}}))
    }

    pub(crate) fn into_wire(self) -> WireError {
        WireError {
            code: self.code,
            message: self.message,
            data: self.data,
        }
    }
}

/// The handler needs the client's input first (see [`crate::CallContext::ask`]): the call
/// answers with this `InputRequiredResult` and the client retries with its answers. Only the
/// SDK makes one; handlers pass it on with `?` and do nothing irreversible before.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the client's input is required")]
pub struct InputRequired {
    pub(crate) result: Value,
}

impl CallError {
    /// Shorthand for a [`ToolError`].
    pub fn tool(message: impl Into<String>) -> Self {
        Self::Tool(ToolError::new(message))
    }

    /// Shorthand for a [`ProtocolError`].
    pub fn protocol(code: i64, message: impl Into<String>) -> Self {
        Self::Protocol(ProtocolError::new(code, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_error_is_a_result_the_model_reads() {
        let err = ToolError::new("boom").into_result();
        assert_eq!(err["isError"], true);
        assert_eq!(err["content"][0]["text"], "boom");
    }

    #[test]
    fn a_missing_capability_names_it_in_data() {
        let wire = ProtocolError::missing_capability("sampling", "no").into_wire();
        assert_eq!(wire.code, -32021);
        assert_eq!(
            wire.data,
            Some(json!({"requiredCapabilities": {"sampling": {}}}))
        );
    }
}
