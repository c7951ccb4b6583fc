//! Errors, one type per layer.
//!
//! [`McpError`] is what a client sees: a JSON-RPC error plus the HTTP status it travels with.
//! The lower layers (`session`, `route`, `catalog`) have their own enums and convert into it,
//! each deciding its code and a message a person can act on.

use axum::http::StatusCode;
use serde_json::{json, Value};

/// JSON-RPC and MCP error codes we emit.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Resource not found, in the 2025 revisions (2026-07-28 uses -32602).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// 2026-07-28 `HeaderMismatch`.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28 `MissingRequiredClientCapability`.
    pub const MISSING_CAPABILITY: i64 = -32021;
    /// 2026-07-28 `UnsupportedProtocolVersion`.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// A JSON-RPC error on its way to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct McpError {
    /// HTTP status of the response carrying it. Method-level errors travel with 200 in the
    /// session lane; transport and validation errors carry a 4xx.
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl McpError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn parse(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::PARSE_ERROR, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, message)
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            StatusCode::OK,
            code::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
        )
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(StatusCode::OK, code::INVALID_PARAMS, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::OK, code::INTERNAL_ERROR, message)
    }

    pub fn header_mismatch(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::HEADER_MISMATCH, message)
    }

    /// The JSON-RPC error object.
    pub fn to_object(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

/// Why a gateway could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error(transparent)]
    Connect(#[from] bus_schema::connect::ConnectError),
    #[error(transparent)]
    Topology(#[from] bus_schema::topology::TopologyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot subscribe to the bus: {0}")]
    Subscribe(#[source] async_nats::Error),
    #[error("cannot set up the requestState key: {0}")]
    RequestStateKey(#[from] crate::request_state::KeySetupError),
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}
