//! What a client sees when something fails: a JSON-RPC error and the HTTP status it travels
//! with. Transport errors are built here at the edge; the core's domain errors are mapped
//! here, once, for both lanes ([`from_core`]), reading the lane where the revisions differ.

use axum::http::StatusCode;
use bus_schema::mcp::code;
use bus_schema::messages::Lane;
use serde_json::{json, Value};

use crate::core::{CoreError, Limited};
use crate::route::{CallError, RouteError};
use crate::session::SessionError;
use crate::store_limits::StoreRefused;
use crate::stream::StreamError;
use crate::tasks::TaskError;

/// A JSON-RPC error on its way to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct McpError {
    /// HTTP status of the response carrying it. Method-level errors travel with 200;
    /// transport and validation errors carry a 4xx, store failures a 5xx.
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
    /// Seconds before trying again can succeed (`Retry-After`), for refusals by a quota.
    pub retry_after: Option<u64>,
}

impl McpError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            data: None,
            retry_after: None,
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

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(StatusCode::OK, code::INVALID_PARAMS, message)
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

/// The one mapping of a domain error to what the client sees.
pub fn from_core(e: &CoreError, lane: Lane) -> McpError {
    let message = e.to_string();
    let ok = StatusCode::OK;
    match e {
        // 2026-07-28 sends an unknown method with 404; the 2025 transport in-band.
        CoreError::MethodNotFound(_) => {
            let status = match lane {
                Lane::Session => ok,
                Lane::Stateless => StatusCode::NOT_FOUND,
            };
            McpError::new(status, code::METHOD_NOT_FOUND, message)
        }
        CoreError::InvalidParams(_) => McpError::new(ok, code::INVALID_PARAMS, message),
        CoreError::Quota(q) => {
            let retry_after = q.retry_after_secs();
            let mut e = McpError::new(StatusCode::TOO_MANY_REQUESTS, code::QUOTA_EXCEEDED, message)
                .with_data(json!({"limit": q.name(), "retryAfterSecs": retry_after}));
            e.retry_after = Some(retry_after);
            e
        }
        // A request id is part of the message, the rest are params.
        CoreError::TooLarge(what) => {
            let code = match what {
                Limited::RequestId => code::INVALID_REQUEST,
                _ => code::INVALID_PARAMS,
            };
            McpError::new(StatusCode::BAD_REQUEST, code, message)
                .with_data(json!({"limit": what.name(), "max": what.limit()}))
        }
        CoreError::Malformed(_) | CoreError::RequestState(_) => {
            McpError::new(StatusCode::BAD_REQUEST, code::INVALID_PARAMS, message)
        }
        // -32002 in the 2025 revisions, -32602 from 2026-07-28 on.
        CoreError::ResourceNotFound { uri } => {
            let code = match lane {
                Lane::Session => code::RESOURCE_NOT_FOUND,
                Lane::Stateless => code::INVALID_PARAMS,
            };
            McpError::new(ok, code, message).with_data(json!({"uri": uri}))
        }
        CoreError::MissingCapability { required, .. } => missing_capability(message, required),
        CoreError::TaskMode { .. } => McpError::new(ok, code::METHOD_NOT_FOUND, message),
        CoreError::Call(CallError::Route(r)) => route(r),
        CoreError::Call(CallError::Worker(w)) => {
            // The 2026-07-28 transport sends a missing capability with 400.
            let status = if w.code == code::MISSING_CAPABILITY {
                StatusCode::BAD_REQUEST
            } else {
                ok
            };
            let e = McpError::new(status, w.code, w.message.clone());
            match &w.data {
                Some(data) => e.with_data(data.clone()),
                None => e,
            }
        }
        CoreError::Task(t) => match t {
            TaskError::Unknown(id) => {
                McpError::new(ok, code::INVALID_PARAMS, message).with_data(json!({"taskId": id}))
            }
            TaskError::Store(_) => service_unavailable(message),
            TaskError::Refused(r) => refused(r),
            TaskError::Conflict => {
                McpError::new(StatusCode::CONFLICT, code::INTERNAL_ERROR, message)
            }
            _ => McpError::new(ok, code::INVALID_PARAMS, message),
        },
        CoreError::SessionNotFound => {
            McpError::new(StatusCode::NOT_FOUND, code::INVALID_REQUEST, message)
        }
        CoreError::Session(SessionError::Refused(r)) => refused(r),
        CoreError::Session(e) => {
            tracing::warn!(error = %e, "session store error");
            service_unavailable(format!("Service Unavailable: {e}"))
        }
        CoreError::Stream(StreamError::Expired) => McpError::new(
            StatusCode::GONE,
            code::INVALID_REQUEST,
            format!("Gone: {message}"),
        )
        .with_data(json!({"reason": "events_expired"})),
        CoreError::Stream(e) => service_unavailable(format!("Service Unavailable: {e}")),
        CoreError::NeedsStream { .. } => McpError::new(ok, code::INTERNAL_ERROR, message)
            .with_data(json!({"reason": "needs_stream"})),
        _ => McpError::new(ok, code::INTERNAL_ERROR, message),
    }
}

/// -32021 with the capabilities the client would have to declare.
fn missing_capability(message: String, required: &Value) -> McpError {
    McpError::new(StatusCode::BAD_REQUEST, code::MISSING_CAPABILITY, message)
        .with_data(json!({"requiredCapabilities": required}))
}

fn service_unavailable(message: String) -> McpError {
    McpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code::INTERNAL_ERROR,
        message,
    )
}

/// A store refusing a write for its size limits (ADR 0007): a full store is the service
/// being unavailable for now; a write too large for it is the client's request being too
/// large, like a body over the body limit.
fn refused(r: &StoreRefused) -> McpError {
    let (status, code) = match r {
        StoreRefused::Full(_) => (StatusCode::SERVICE_UNAVAILABLE, code::INTERNAL_ERROR),
        _ => (StatusCode::PAYLOAD_TOO_LARGE, code::INVALID_REQUEST),
    };
    McpError::new(status, code, r.to_string())
        .with_data(json!({"reason": r.reason(), "store": r.store().stream()}))
}

/// A call that produced no worker answer: an unknown tool is the client's mistake, the rest
/// are -32603 with a machine-readable `data.reason`.
fn route(e: &RouteError) -> McpError {
    match e {
        RouteError::UnknownTool(_) => {
            McpError::new(StatusCode::OK, code::INVALID_PARAMS, e.to_string())
        }
        RouteError::Store(r) => refused(r),
        // The call queue at its limits is the store being full.
        RouteError::QueueFull => McpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::INTERNAL_ERROR,
            e.to_string(),
        )
        .with_data(json!({"reason": e.reason()})),
        _ => McpError::new(StatusCode::OK, code::INTERNAL_ERROR, e.to_string())
            .with_data(json!({"reason": e.reason()})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store_limits::Store;

    #[test]
    fn the_lanes_differ_only_where_the_revisions_do() {
        let both = |e: CoreError| {
            let (s, t) = (from_core(&e, Lane::Session), from_core(&e, Lane::Stateless));
            ((s.status, s.code), (t.status, t.code))
        };
        // The same store failure is the same answer on both lanes.
        let store = both(TaskError::Store("down".into()).into());
        assert_eq!(
            store.0,
            (StatusCode::SERVICE_UNAVAILABLE, code::INTERNAL_ERROR)
        );
        assert_eq!(store.0, store.1);
        // Where the revisions differ, the lane decides.
        let unknown = both(CoreError::MethodNotFound("x".into()));
        assert_eq!(unknown.0, (StatusCode::OK, code::METHOD_NOT_FOUND));
        assert_eq!(unknown.1, (StatusCode::NOT_FOUND, code::METHOD_NOT_FOUND));
        let resource = both(CoreError::ResourceNotFound { uri: "u".into() });
        assert_eq!(resource.0 .1, code::RESOURCE_NOT_FOUND);
        assert_eq!(resource.1 .1, code::INVALID_PARAMS);
    }

    #[test]
    fn worker_errors_pass_through_with_their_code() {
        let e = CoreError::worker(bus_schema::messages::WireError {
            code: code::MISSING_CAPABILITY,
            message: "needs elicitation".into(),
            data: Some(json!({"requiredCapabilities": {"elicitation": {}}})),
        });
        let wire = from_core(&e, Lane::Stateless);
        assert_eq!(
            (wire.status, wire.code, wire.message.as_str()),
            (
                StatusCode::BAD_REQUEST,
                code::MISSING_CAPABILITY,
                "needs elicitation"
            )
        );
        assert!(wire.data.is_some());
        let timeout = from_core(&RouteError::QueueFull.into(), Lane::Session);
        assert_eq!(timeout.data, Some(json!({"reason": "queue_full"})));
    }

    #[test]
    fn a_full_store_is_503_and_a_write_too_large_for_it_413() {
        let full = from_core(
            &SessionError::Refused(StoreRefused::Full(Store::Sessions)).into(),
            Lane::Session,
        );
        assert_eq!(
            (full.status, full.code),
            (StatusCode::SERVICE_UNAVAILABLE, code::INTERNAL_ERROR)
        );
        assert!(
            full.message.contains("the session store is full"),
            "{}",
            full.message
        );
        assert_eq!(
            full.data,
            Some(json!({"reason": "store_full", "store": "KV_mcpbus-sessions"}))
        );
        let big = from_core(
            &RouteError::Store(StoreRefused::TooLarge(Store::Events)).into(),
            Lane::Stateless,
        );
        assert_eq!(
            (big.status, big.code),
            (StatusCode::PAYLOAD_TOO_LARGE, code::INVALID_REQUEST)
        );
        assert!(
            big.message.contains("too large for the event store"),
            "{}",
            big.message
        );
        let queue = from_core(&RouteError::QueueFull.into(), Lane::Stateless);
        assert_eq!(queue.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
