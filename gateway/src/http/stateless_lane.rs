//! The stateless edge: MCP 2026-07-28.
//!
//! No sessions: every request carries its protocol version and client capabilities in
//! `_meta`, mirrored into `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*`
//! headers that must agree with the body (so an intermediary routing on headers cannot be
//! fooled). Those checks are this edge's; what the request asks for is served by the core.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bus_schema::mcp::{code, meta, Method, ProtocolVersion};
use bus_schema::principal::Principal;
use serde_json::{json, Value};

use super::headers as header;
use super::jsonrpc::{self, error_response, Incoming};
use super::param_headers;
use super::render::render;
use super::wire::McpError;
use crate::app::App;
use crate::catalog::Lookup;
use crate::core::{self, Caller, Request};

/// Whether a message belongs to this lane: it carries the modern `_meta`, or it names a
/// modern revision in its header without a session.
pub fn claims(r: &jsonrpc::Request, headers: &HeaderMap) -> bool {
    if r.meta(meta::PROTOCOL_VERSION).is_some() {
        return true;
    }
    let modern_header = headers
        .get(header::PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ProtocolVersion::parse(v).ok())
        .is_some_and(ProtocolVersion::is_stateless);
    modern_header
        && r.method != Method::Initialize.as_str()
        && headers.get(header::SESSION_ID).is_none()
}

pub async fn handle(
    app: &App,
    headers: &HeaderMap,
    incoming: Incoming,
    principal: Option<Principal>,
) -> Response {
    let r = match incoming {
        Incoming::Request(r) => r,
        // This revision defines no client notifications over HTTP; accept and ignore.
        Incoming::Notification(_) | Incoming::Response(_) => {
            return StatusCode::ACCEPTED.into_response()
        }
    };
    let version = match validate(headers, &r) {
        Ok(v) => v,
        Err(e) => return error_response(&r.id, &e),
    };
    let caller = Caller::stateless(version, &r.params).with_principal(principal);
    let outcome = match Request::parse(&caller, r.id.clone(), &r.method, r.params) {
        Ok(request) => match check_param_headers(app, headers, &request) {
            Ok(()) => core::dispatch(app, &caller, request).await,
            Err(e) => return error_response(&r.id, &e),
        },
        Err(e) => Err(e),
    };
    render(app, &caller.profile, &r.id, outcome).await
}

/// `Mcp-Param-*` headers of a `tools/call` against its arguments, for the tool as the
/// catalogue has it (an unknown tool is reported by the call itself).
fn check_param_headers(app: &App, headers: &HeaderMap, r: &Request) -> Result<(), McpError> {
    let core::Command::CallTool { name, .. } = &r.command else {
        return Ok(());
    };
    match app.catalog.snapshot().lookup(name) {
        Lookup::Live(route) => {
            let arguments = r.params.get("arguments").unwrap_or(&Value::Null);
            param_headers::check(headers, &route.tool, arguments)
        }
        _ => Ok(()),
    }
}

/// Version, header and capability checks. The version header must agree with `_meta` before
/// anything else (a disagreement is -32020 even when the body's version is one we do not
/// speak); then an unsupported version is -32022, so the client can retry with one we do.
fn validate(headers: &HeaderMap, r: &jsonrpc::Request) -> Result<ProtocolVersion, McpError> {
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
    let version = ProtocolVersion::parse(requested)
        .ok()
        .filter(|v| v.is_stateless())
        .ok_or_else(|| {
            McpError::new(
                StatusCode::BAD_REQUEST,
                code::UNSUPPORTED_PROTOCOL_VERSION,
                format!("Unsupported protocol version {requested:?}"),
            )
            .with_data(json!({
                "supported": ProtocolVersion::all_newest_first(),
                "requested": requested,
            }))
        })?;
    expect_header(headers, header::METHOD, "Mcp-Method", &r.method)?;
    let named_by = match Method::parse(&r.method) {
        Some(Method::ToolsCall | Method::PromptsGet) => Some("name"),
        Some(Method::ResourcesRead) => Some("uri"),
        Some(Method::TasksGet | Method::TasksUpdate | Method::TasksCancel) => Some("taskId"),
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
    Ok(version)
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
