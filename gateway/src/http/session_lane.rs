//! The session edge: MCP 2025-03-26, 2025-06-18 and 2025-11-25.
//!
//! What is the 2025 transport's own: `initialize` answers with `MCP-Session-Id`, every later
//! request names the session (400 if missing, 404 if unknown or ended), an unsupported
//! `MCP-Protocol-Version` is 400, `DELETE` ends the session. Everything a request asks for
//! is served by the core.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bus_schema::mcp::ProtocolVersion;
use bus_schema::principal::Principal;
use serde_json::{json, Value};

use super::headers as header;
use super::jsonrpc::{error_response, json_response, Incoming};
use super::render::{self, render};
use super::wire::{from_core, McpError};
use crate::app::App;
use crate::core::{self, Caller, CoreError, Request};
use crate::session::SessionId;

pub async fn handle(
    app: &App,
    headers: &HeaderMap,
    incoming: Incoming,
    principal: Option<Principal>,
) -> Response {
    let id = match &incoming {
        Incoming::Request(r) => r.id.clone(),
        _ => Value::Null,
    };
    if let Incoming::Request(r) = &incoming {
        if r.method == bus_schema::mcp::Method::Initialize.as_str() {
            return serve(
                app,
                &Caller::initializing().with_principal(principal),
                r.id.clone(),
                &r.method,
                r.params.clone(),
            )
            .await;
        }
    }
    if let Err(e) = check_version_header(headers) {
        return error_response(&id, &e);
    }
    let caller = match find_session(app, headers).await {
        Ok(caller) => caller.with_principal(principal),
        Err(e) => return error_response(&id, &e),
    };
    match incoming {
        Incoming::Request(r) => serve(app, &caller, r.id, &r.method, r.params).await,
        Incoming::Response(answer) => {
            core::answer(app, &answer).await;
            StatusCode::ACCEPTED.into_response()
        }
        Incoming::Notification(n) => {
            core::notify(app, &caller, &n.method, &n.params).await;
            StatusCode::ACCEPTED.into_response()
        }
    }
}

async fn serve(app: &App, caller: &Caller, id: Value, method: &str, params: Value) -> Response {
    let outcome = match Request::parse(caller, id.clone(), method, params) {
        Ok(request) => core::dispatch(app, caller, request).await,
        Err(e) => Err(e),
    };
    render(app, &caller.profile, &id, outcome).await
}

/// `DELETE /mcp`: ends the session named by `MCP-Session-Id`.
pub async fn delete(app: &App, headers: &HeaderMap, principal: Option<Principal>) -> Response {
    let caller = match find_session(app, headers).await {
        Ok(caller) => caller.with_principal(principal),
        Err(e) => return error_response(&Value::Null, &e),
    };
    let session = caller.session_id().expect("found sessions have ids");
    match core::end_session(app, session).await {
        Ok(()) => json_response(StatusCode::OK, &json!({})),
        Err(e) => render::error(&Value::Null, &caller.profile, &e),
    }
}

/// A present `MCP-Protocol-Version` must name a session revision; an absent one means
/// 2025-03-26, as the 2025-06-18 transport allows.
pub fn check_version_header(headers: &HeaderMap) -> Result<(), McpError> {
    let Some(value) = headers.get(header::PROTOCOL_VERSION) else {
        return Ok(());
    };
    let v = value.to_str().unwrap_or("");
    match ProtocolVersion::parse(v) {
        Ok(version) if !version.is_stateless() => Ok(()),
        _ => Err(McpError::invalid_request(format!(
            "Bad Request: unsupported MCP-Protocol-Version {v:?} for a session (supported: {})",
            ProtocolVersion::SESSION.map(|v| v.as_str()).join(", ")
        ))),
    }
}

/// The caller of a session-lane request: the live session its `MCP-Session-Id` names.
pub async fn find_session(app: &App, headers: &HeaderMap) -> Result<Caller, McpError> {
    let raw = headers
        .get(header::SESSION_ID)
        .ok_or_else(|| {
            McpError::invalid_request(
                "Bad Request: MCP-Session-Id header is required (send initialize first to get one)",
            )
        })?
        .to_str()
        .unwrap_or("");
    let not_found = || {
        from_core(
            &CoreError::SessionNotFound,
            bus_schema::messages::Lane::Session,
        )
    };
    let id = SessionId::parse(raw).ok_or_else(not_found)?;
    match app.sessions.get(&id).await {
        Ok(Some(record)) => Ok(Caller::session(id, record)),
        Ok(None) => Err(not_found()),
        Err(e) => Err(from_core(&e.into(), bus_schema::messages::Lane::Session)),
    }
}
