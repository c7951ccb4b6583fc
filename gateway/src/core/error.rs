//! Why the core could not serve a request: domain errors that know nothing of HTTP.
//!
//! Each keeps its source. The edges map them once (`http/wire.rs`) to an HTTP status and a
//! JSON-RPC code; where the revisions differ (an unknown resource, an unknown method) the
//! mapping reads the caller's profile.

use bus_schema::mcp::capability;
use bus_schema::messages::WireError;
use serde_json::{json, Value};

use super::limits::Limited;
use crate::quota::QuotaExceeded;
use crate::request_state::StateError;
use crate::route::CallError;
use crate::session::SessionError;
use crate::stream::StreamError;
use crate::tasks::TaskError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The method is not one this revision serves.
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    /// Params a method can work with, but that name nothing it can serve (a bad cursor, an
    /// unknown prompt or log level). Answered in-band.
    #[error("{0}")]
    InvalidParams(String),
    /// Params so malformed the request cannot be understood (`initialize` without a
    /// version, a retry's broken `inputResponses`): the request itself is refused.
    #[error("{0}")]
    Malformed(String),
    /// A per-client quota (ADR 0012).
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
    /// Something the cluster would have to store or hold is over its cap.
    #[error("Request too large: {}", .0.describe())]
    TooLarge(Limited),
    /// A `requestState` the client brought back that does not open.
    #[error("Invalid params: {0}")]
    RequestState(#[from] StateError),
    #[error("Resource not found: {uri}")]
    ResourceNotFound { uri: String },
    /// The client did not declare what the request needs.
    #[error("{message}")]
    MissingCapability {
        message: String,
        /// `requiredCapabilities`, as the client would have to declare them.
        required: Value,
    },
    /// A tool called as a task that does not support it, or not as one when it must be.
    #[error("{}", if *.as_task { format!("tool {:?} does not support being called as a task", .tool) } else { format!("tool {:?} can only be called as a task (params.task)", .tool) })]
    TaskMode { tool: String, as_task: bool },
    /// A call that did not produce a worker's answer, or the worker's own error.
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error("Session not found: it never existed, was ended, or expired; initialize a new one")]
    SessionNotFound,
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The tool asked the client something a single JSON response cannot carry.
    #[error("the tool asked the client for {method}, which a JSON response cannot carry; this gateway runs with --json-tool-calls, use an SSE gateway")]
    NeedsStream { method: String },
    /// A worker's answer the gateway cannot pass on (a malformed `InputRequiredResult`).
    #[error("{0}")]
    BadWorkerAnswer(String),
    #[error("{0}")]
    Internal(String),
}

impl From<Limited> for CoreError {
    fn from(what: Limited) -> Self {
        crate::metrics::METRICS
            .refused
            .with_label_values(&[what.name()])
            .inc();
        Self::TooLarge(what)
    }
}

impl From<crate::route::RouteError> for CoreError {
    fn from(e: crate::route::RouteError) -> Self {
        Self::Call(CallError::Route(e))
    }
}

impl CoreError {
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::InvalidParams(message.into())
    }

    /// -32021 naming the tasks extension: what a 2026-07-28 client that did not declare it
    /// gets for `what`.
    pub fn missing_task_extension(what: &str) -> Self {
        let extension = capability::TASKS_EXTENSION;
        Self::MissingCapability {
            message: format!(
                "{what} needs the {extension} extension, which the client did not declare"
            ),
            required: json!({capability::EXTENSIONS: {extension: {}}}),
        }
    }

    /// The worker's (or a stored task's) JSON-RPC error, passed on as it is.
    pub fn worker(error: WireError) -> Self {
        Self::Call(CallError::Worker(error))
    }
}
