//! The stateless lane: MCP 2026-07-28.
//!
//! No sessions: every request carries its protocol version and client capabilities in
//! `_meta`, mirrored into `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers that
//! must agree with the body (so an intermediary routing on headers cannot be fooled).

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::accepted;
use super::jsonrpc::{error_response, json_response, result_message, Incoming, Request};
use super::listen;
use super::methods::{self, log_severity, Caller};
use super::mrtr::{self, Mrtr};
use super::param_headers;
use super::reply::{CallFeed, CallReply};
use super::tasks;
use super::version::{all_versions, header, meta, STATELESS_VERSIONS};
use crate::catalog::Lookup;
use crate::error::{code, McpError};
use crate::metrics::METRICS;
use crate::server::App;

/// Whether a message belongs to this lane: it carries the modern `_meta`, or it names a
/// modern revision in its header without a session.
pub fn claims(r: &Request, headers: &HeaderMap) -> bool {
    if r.meta(meta::PROTOCOL_VERSION).is_some() {
        return true;
    }
    let modern_header = headers
        .get(header::PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| STATELESS_VERSIONS.contains(&v));
    modern_header && r.method != "initialize" && headers.get(header::SESSION_ID).is_none()
}

pub async fn handle(app: &App, headers: &HeaderMap, incoming: Incoming) -> Response {
    let mut r = match incoming {
        Incoming::Request(r) => r,
        // This revision defines no client notifications over HTTP; accept and ignore.
        Incoming::Notification(_) | Incoming::Response(_) => return accepted(),
    };
    METRICS.request("stateless", &r.method);
    if let Err(e) = validate(headers, &r) {
        return error_response(&r.id, &e);
    }
    // A retry of a multi round-trip request: check what the client brings back.
    let mrtr = if mrtr::supports(&r.method) {
        let capabilities = r
            .meta(meta::CLIENT_CAPABILITIES)
            .cloned()
            .unwrap_or_default();
        match Mrtr::accept(&app.request_state, &mut r, &capabilities) {
            Ok(m) => Some(m),
            Err(e) => return error_response(&r.id, &e),
        }
    } else {
        None
    };
    let ttl_ms = app.config.list_ttl.as_millis() as u64;
    match r.method.as_str() {
        "server/discover" => {
            let mut capabilities = methods::capabilities();
            capabilities["extensions"] = json!({crate::tasks::EXTENSION: {}});
            let mut result = json!({
                "supportedVersions": all_versions(),
                "capabilities": capabilities,
                "instructions": "Tools served by mcpbus workers over NATS JetStream.",
                "ttlMs": ttl_ms,
                "cacheScope": "public",
            });
            finish(&mut result);
            json_response(StatusCode::OK, &result_message(&r.id, result))
        }
        "tools/list" => cacheable_list(&r.id, ttl_ms, methods::tools_list(app, &r.params)),
        "tools/call" => {
            if let Err(e) = check_param_headers(app, headers, &r) {
                return error_response(&r.id, &e);
            }
            let caller = caller(&r);
            let name = r.params.get("name").and_then(Value::as_str).unwrap_or("");
            if let Lookup::Live(route) = app.catalog.snapshot().lookup(name) {
                let support = tasks::task_support(route);
                let takes = tasks::client_takes_tasks(&r);
                if support == "required" && !takes {
                    let e = tasks::missing_extension(&format!("tool {name:?}"));
                    return error_response(&r.id, &e);
                }
                if support != "forbidden" && takes {
                    let route = route.clone();
                    return tasks::call(app, &r, route, caller, mrtr).await;
                }
            }
            let mut call = match methods::tools_call(app, &r, caller).await {
                Ok(c) => c,
                Err(e) => return error_response(&r.id, &e),
            };
            // Errors this lane sends with a 4xx (a missing client capability) come back from
            // the worker at once; give them their status instead of a 200 stream.
            if let Some(e) = call.early_failure(EARLY_FAILURE_WINDOW).await {
                return error_response(&r.id, &e);
            }
            let reply = CallReply {
                progress_token: r.meta("progressToken").cloned(),
                // No log messages unless the request asked for a level.
                min_log: r
                    .meta(meta::LOG_LEVEL)
                    .and_then(Value::as_str)
                    .and_then(log_severity),
                id: r.id,
                finish,
                extra: None,
                mrtr,
                related_task: None,
            };
            let call = CallFeed::Core(Box::new(call));
            if app.config.sse_tool_calls {
                reply.sse(call, app.config.sse_keep_alive, app.release.clone())
            } else {
                reply.json(call).await
            }
        }
        "subscriptions/listen" => listen::open(app, r),
        "tasks/get" | "tasks/update" | "tasks/cancel" => tasks::handle(app, &r).await,
        m if methods::list_kind(m).is_some() => {
            let kind = methods::list_kind(m).expect("checked");
            cacheable_list(&r.id, ttl_ms, methods::list_items(app, kind, &r.params))
        }
        m if methods::is_routed_read(m) => {
            let caller = caller(&r);
            // Reads are cacheable; what a worker returns may depend on the caller, so private.
            let extra =
                (m == "resources/read").then(|| json!({"ttlMs": ttl_ms, "cacheScope": "private"}));
            match methods::routed_read(app, &r, caller).await {
                Ok(call) => {
                    let reply = CallReply {
                        id: r.id,
                        progress_token: None,
                        min_log: None,
                        finish,
                        extra,
                        mrtr,
                        related_task: None,
                    };
                    reply.json(CallFeed::Core(Box::new(call))).await
                }
                Err(e) => error_response(&r.id, &e),
            }
        }
        other => error_response(
            &r.id,
            &McpError::method_not_found(other).with_status(StatusCode::NOT_FOUND),
        ),
    }
}

/// `Mcp-Param-*` headers of a `tools/call` against its arguments, for the tool as the
/// catalogue has it (an unknown tool is reported by the call itself).
fn check_param_headers(app: &App, headers: &HeaderMap, r: &Request) -> Result<(), McpError> {
    let name = r.params.get("name").and_then(Value::as_str).unwrap_or("");
    match app.catalog.snapshot().lookup(name) {
        Lookup::Live(route) => {
            let arguments = r.params.get("arguments").unwrap_or(&Value::Null);
            param_headers::check(headers, &route.tool, arguments)
        }
        _ => Ok(()),
    }
}

/// Who is calling: everything the worker may need travels in the request's `_meta`.
fn caller(r: &Request) -> Caller {
    Caller::stateless(
        r.meta(meta::CLIENT_CAPABILITIES)
            .cloned()
            .unwrap_or_default(),
    )
}

/// How long a stateless tool call waits for an immediate failure before it starts streaming.
const EARLY_FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_millis(250);

/// A list result with the caching hints every cacheable list carries in this lane.
fn cacheable_list(id: &Value, ttl_ms: u64, list: Result<Value, McpError>) -> Response {
    match list {
        Ok(mut result) => {
            result["ttlMs"] = json!(ttl_ms);
            result["cacheScope"] = json!("public");
            finish(&mut result);
            json_response(StatusCode::OK, &result_message(id, result))
        }
        Err(e) => error_response(id, &e),
    }
}

/// Every result of this lane says it is complete and who served it.
pub fn finish(result: &mut Value) {
    if let Some(obj) = result.as_object_mut() {
        // A worker's InputRequiredResult keeps its own type.
        obj.entry("resultType").or_insert_with(|| json!("complete"));
        let meta = obj.entry("_meta").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.insert(meta::SERVER_INFO.into(), methods::server_info());
        }
    }
}

/// Version, header and capability checks. The version header must agree with `_meta` before
/// anything else (a disagreement is -32020 even when the body's version is one we do not
/// speak); then an unsupported version is -32022, so the client can retry with one we do.
fn validate(headers: &HeaderMap, r: &Request) -> Result<(), McpError> {
    let requested = r
        .meta(meta::PROTOCOL_VERSION)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad_params(format!(
                "Invalid params: _meta[\"{}\"] is required",
                meta::PROTOCOL_VERSION
            ))
        })?;
    expect_header(
        headers,
        header::PROTOCOL_VERSION,
        "MCP-Protocol-Version",
        requested,
    )?;
    if !STATELESS_VERSIONS.contains(&requested) {
        return Err(McpError::new(
            StatusCode::BAD_REQUEST,
            code::UNSUPPORTED_PROTOCOL_VERSION,
            format!("Unsupported protocol version {requested:?}"),
        )
        .with_data(json!({"supported": all_versions(), "requested": requested})));
    }
    expect_header(headers, header::METHOD, "Mcp-Method", &r.method)?;
    let named_by = match r.method.as_str() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    };
    if let Some(field) = named_by {
        let body = r.params.get(field).and_then(Value::as_str).unwrap_or("");
        expect_header(headers, header::NAME, "Mcp-Name", body)?;
    }
    if !r
        .meta(meta::CLIENT_CAPABILITIES)
        .is_some_and(Value::is_object)
    {
        return Err(bad_params(format!(
            "Invalid params: _meta[\"{}\"] must be an object",
            meta::CLIENT_CAPABILITIES
        )));
    }
    Ok(())
}

fn bad_params(message: String) -> McpError {
    McpError::invalid_params(message).with_status(StatusCode::BAD_REQUEST)
}

fn expect_header(
    headers: &HeaderMap,
    name: &str,
    display: &str,
    body: &str,
) -> Result<(), McpError> {
    let raw = headers.get(name).ok_or_else(|| {
        McpError::header_mismatch(format!(
            "Header mismatch: required header {display} is missing"
        ))
    })?;
    let value = param_headers::decoded(raw, display)?;
    if value == body {
        Ok(())
    } else {
        Err(McpError::header_mismatch(format!(
            "Header mismatch: {display} header value {value:?} does not match body value {body:?}"
        )))
    }
}
