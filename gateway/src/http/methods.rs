//! What the gateway serves, independent of the lane a request arrived on. The lanes add
//! their framing (`resultType`, caching hints, sessions) around these results.

use bus_schema::messages::Lane;
use serde_json::{json, Value};

use super::jsonrpc::Request;
use crate::catalog::{Lookup, ToolRoute};
use crate::error::McpError;
use crate::route::{CallSpec, PendingCall, RouteError};
use crate::server::App;
use crate::session::SessionId;
use crate::stream::{RequestStream, StreamOrigin};

/// Who is calling, as the workers need to know.
pub struct Caller {
    pub lane: Lane,
    pub protocol_version: String,
    pub client_capabilities: Value,
}

/// `serverInfo` / `io.modelcontextprotocol/serverInfo`.
pub fn server_info() -> Value {
    json!({"name": "mcpbus", "title": "mcpbus gateway", "version": env!("CARGO_PKG_VERSION")})
}

/// Server capabilities: tool list changes are announced cluster-wide (ADR 0003).
pub fn capabilities() -> Value {
    json!({"tools": {"listChanged": true}, "logging": {}})
}

/// `tools/list`: one page of the aggregated catalogue.
pub fn tools_list(app: &App, params: &Value) -> Result<Value, McpError> {
    let cursor = match params.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c.as_str()),
        Some(_) => {
            return Err(McpError::invalid_params(
                "Invalid params: cursor must be a string",
            ))
        }
    };
    let snapshot = app.catalog.snapshot();
    let page = snapshot
        .page(cursor, app.config.page_size)
        .map_err(|e| McpError::invalid_params(format!("Invalid params: {e}")))?;
    let tools: Vec<&serde_json::Map<String, Value>> =
        page.tools.iter().map(|t| t.tool.as_ref()).collect();
    let mut result = json!({"tools": tools});
    if let Some(next) = page.next_cursor {
        result["nextCursor"] = Value::String(next);
    }
    Ok(result)
}

/// `tools/call` with replies on core NATS (not resumable).
pub async fn tools_call(app: &App, req: &Request, caller: Caller) -> Result<PendingCall, McpError> {
    let (route, spec) = resolve_call(app, req, caller)?;
    Ok(app
        .dispatcher
        .call(&route, spec, app.config.default_tool_timeout)
        .await?)
}

/// `tools/call` with replies stored in the session's events, resumable on any node.
pub async fn tools_call_stored(
    app: &App,
    req: &Request,
    caller: Caller,
    session: &SessionId,
    progress_token: Option<Value>,
) -> Result<RequestStream, McpError> {
    let (route, spec) = resolve_call(app, req, caller)?;
    Ok(RequestStream::start(
        &app.events,
        &app.dispatcher,
        &route,
        spec,
        app.config.default_tool_timeout,
        StreamOrigin {
            session: session.as_str(),
            request_id: req.id.clone(),
            progress_token,
        },
    )
    .await?)
}

/// Validates a `tools/call` and resolves its route.
fn resolve_call(
    app: &App,
    req: &Request,
    caller: Caller,
) -> Result<(ToolRoute, CallSpec), McpError> {
    let name = req
        .params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            McpError::invalid_params("Invalid params: tools/call needs a string \"name\"")
        })?;
    if !matches!(
        req.params.get("arguments"),
        None | Some(Value::Null) | Some(Value::Object(_))
    ) {
        return Err(McpError::invalid_params(
            "Invalid params: \"arguments\" must be an object",
        ));
    }
    let snapshot = app.catalog.snapshot();
    let route = match snapshot.lookup(name) {
        Lookup::Live(route) => route.clone(),
        Lookup::Departed(pool) => {
            return Err(RouteError::NoWorker {
                tool: name.to_owned(),
                pool: pool.clone(),
            }
            .into())
        }
        Lookup::Unknown => return Err(RouteError::UnknownTool(name.to_owned()).into()),
    };
    let spec = CallSpec {
        method: req.method.clone(),
        params: req.params.clone(),
        lane: caller.lane,
        protocol_version: caller.protocol_version,
        client_capabilities: caller.client_capabilities,
    };
    Ok((route, spec))
}

/// MCP log levels in increasing severity, for filtering `notifications/message`.
const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

pub fn log_severity(level: &str) -> Option<usize> {
    LOG_LEVELS.iter().position(|l| *l == level)
}
