//! What the gateway serves, independent of the lane a request arrived on. The lanes add
//! their framing (`resultType`, caching hints, sessions) around these results.

use bus_schema::messages::Lane;
use serde_json::{json, Value};

use super::jsonrpc::Request;
use crate::catalog::{ListKind, Lookup, ToolRoute};
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

impl Caller {
    /// A 2026-07-28 client with these capabilities: everything travels in each request.
    pub fn stateless(client_capabilities: Value) -> Self {
        Self {
            lane: Lane::Stateless,
            protocol_version: super::version::STATELESS_VERSIONS[0].to_owned(),
            client_capabilities,
        }
    }

    /// The bus call for `req` on behalf of this caller.
    pub fn spec(self, req: &Request) -> CallSpec {
        CallSpec {
            method: req.method.clone(),
            params: req.params.clone(),
            lane: self.lane,
            protocol_version: self.protocol_version,
            client_capabilities: self.client_capabilities,
            task_id: None,
        }
    }
}

/// `serverInfo` / `io.modelcontextprotocol/serverInfo`.
pub fn server_info() -> Value {
    json!({"name": "mcpbus", "title": "mcpbus gateway", "version": env!("CARGO_PKG_VERSION")})
}

/// Server capabilities: list changes are announced cluster-wide (ADR 0003), resource
/// updates reach subscribers.
pub fn capabilities() -> Value {
    json!({
        "tools": {"listChanged": true},
        "resources": {"listChanged": true, "subscribe": true},
        "prompts": {"listChanged": true},
        "completions": {},
        "logging": {},
    })
}

/// The method that lists `kind`.
pub fn list_kind(method: &str) -> Option<ListKind> {
    match method {
        "resources/list" => Some(ListKind::Resources),
        "resources/templates/list" => Some(ListKind::Templates),
        "prompts/list" => Some(ListKind::Prompts),
        _ => None,
    }
}

/// `resources/list`, `resources/templates/list`, `prompts/list`: one page of the catalogue.
pub fn list_items(app: &App, kind: ListKind, params: &Value) -> Result<Value, McpError> {
    let cursor = cursor_param(params)?;
    let snapshot = app.catalog.snapshot();
    let (items, next) = snapshot
        .item_page(kind, cursor, app.config.page_size)
        .map_err(|e| McpError::invalid_params(format!("Invalid params: {e}")))?;
    let list: Vec<&serde_json::Map<String, Value>> =
        items.iter().map(|i| i.item.as_ref()).collect();
    let mut result = json!({ kind.fields().1: list });
    if let Some(next) = next {
        result["nextCursor"] = Value::String(next);
    }
    Ok(result)
}

fn cursor_param(params: &Value) -> Result<Option<&str>, McpError> {
    match params.get("cursor") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(c)) => Ok(Some(c.as_str())),
        Some(_) => Err(McpError::invalid_params(
            "Invalid params: cursor must be a string",
        )),
    }
}

/// Whether a method is served by the pool that owns a resource, template or prompt.
pub fn is_routed_read(method: &str) -> bool {
    matches!(
        method,
        "resources/read" | "prompts/get" | "completion/complete"
    )
}

/// `resources/read`, `prompts/get`, `completion/complete`: found in the catalogue, then
/// queued for the owning pool like a tool call (replies on core NATS: these are short).
pub async fn routed_read(
    app: &App,
    req: &Request,
    caller: Caller,
) -> Result<PendingCall, McpError> {
    let snapshot = app.catalog.snapshot();
    let text = |key: &str| req.params.get(key).and_then(Value::as_str);
    let (pool, key) = match req.method.as_str() {
        "resources/read" => {
            let uri = text("uri").ok_or_else(|| {
                McpError::invalid_params("Invalid params: resources/read needs a string \"uri\"")
            })?;
            match snapshot.resource_route(uri) {
                Some(r) => (r.pool.clone(), uri.to_owned()),
                None => return Err(resource_not_found(caller.lane, uri)),
            }
        }
        "prompts/get" => {
            let name = text("name").ok_or_else(|| {
                McpError::invalid_params("Invalid params: prompts/get needs a string \"name\"")
            })?;
            match snapshot.item(ListKind::Prompts, name) {
                Some(p) => (p.pool.clone(), name.to_owned()),
                None => return Err(McpError::invalid_params(format!("Unknown prompt: {name}"))),
            }
        }
        _ => {
            let reference = &req.params["ref"];
            let found = match (
                reference["type"].as_str(),
                reference["name"].as_str(),
                reference["uri"].as_str(),
            ) {
                (Some("ref/prompt"), Some(name), _) => snapshot.item(ListKind::Prompts, name),
                (Some("ref/resource"), _, Some(uri)) => snapshot
                    .item(ListKind::Templates, uri)
                    .or_else(|| snapshot.item(ListKind::Resources, uri)),
                _ => None,
            };
            match found {
                Some(i) => (i.pool.clone(), reference.to_string()),
                None => {
                    return Err(McpError::invalid_params(format!(
                        "Invalid params: unknown completion reference {reference}"
                    )))
                }
            }
        }
    };
    let mut target = serde_json::Map::new();
    target.insert("name".into(), Value::String(key));
    let route = ToolRoute {
        pool,
        tool: std::sync::Arc::new(target),
        timeout: None,
    };
    let spec = caller.spec(req);
    Ok(app
        .dispatcher
        .call(&route, spec, app.config.default_tool_timeout)
        .await?)
}

/// An unknown resource: -32002 in the 2025 revisions, -32602 from 2026-07-28 on.
fn resource_not_found(lane: Lane, uri: &str) -> McpError {
    let code = match lane {
        Lane::Session => crate::error::code::RESOURCE_NOT_FOUND,
        Lane::Stateless => crate::error::code::INVALID_PARAMS,
    };
    McpError::new(
        axum::http::StatusCode::OK,
        code,
        format!("Resource not found: {uri}"),
    )
    .with_data(json!({"uri": uri}))
}

/// `tools/list`: one page of the aggregated catalogue.
pub fn tools_list(app: &App, params: &Value) -> Result<Value, McpError> {
    let cursor = cursor_param(params)?;
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
            call_id: None,
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
    let spec = caller.spec(req);
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
