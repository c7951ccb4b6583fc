//! The session lane: MCP 2025-03-26, 2025-06-18 and 2025-11-25.
//!
//! `initialize` creates a session in JetStream KV and returns its id in `MCP-Session-Id`;
//! every later request names it, on whichever gateway it lands. Unknown or ended sessions get
//! 404, a missing id 400, an unsupported `MCP-Protocol-Version` 400.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bus_schema::messages::Lane;
use serde_json::{json, Value};

use super::accepted;
use super::jsonrpc::{error_response, json_response, result_message, Incoming, Request};
use super::methods::{self, Caller};
use super::reply::{CallFeed, CallReply};
use super::session_tasks;
use super::tasks;
use super::version::{self, header, DEFAULT_SESSION_VERSION, SESSION_VERSIONS};
use crate::catalog::Lookup;
use crate::error::{code, McpError};
use crate::metrics::METRICS;
use crate::route::parse_client_request_id;
use crate::server::App;
use crate::session::{now_ms, SessionId, SessionRecord};
use bus_schema::messages::{encode, ClientAnswer, WireError};
use bus_schema::{subjects, PROTOCOL_VERSION};

pub async fn handle(app: &App, headers: &HeaderMap, incoming: Incoming) -> Response {
    if let Incoming::Request(r) = &incoming {
        METRICS.request("session", &r.method);
        if r.method == "initialize" {
            return initialize(app, r).await;
        }
    }
    let id = match &incoming {
        Incoming::Request(r) => r.id.clone(),
        _ => Value::Null,
    };
    if let Err(e) = check_version_header(headers) {
        return error_response(&id, &e);
    }
    let (session, record) = match find_session(app, headers).await {
        Ok(found) => found,
        Err(e) => return error_response(&id, &e),
    };
    match incoming {
        Incoming::Request(r) => dispatch(app, r, session, record).await,
        Incoming::Response(answer) => {
            forward_answer(app, &answer).await;
            accepted()
        }
        Incoming::Notification(n) if n.method == "notifications/cancelled" => {
            // The request may run anywhere and its stream be held by any node: the cancel
            // subject is derived from the session and the request id, so no lookup is needed.
            if let Some(request_id) = n.params.get("requestId") {
                let subject = subjects::cancel_request(session.as_str(), request_id);
                app.events.cancel_call(subject, 0).await;
            }
            accepted()
        }
        Incoming::Notification(_) => accepted(),
    }
}

async fn initialize(app: &App, r: &Request) -> Response {
    let requested = r.params.get("protocolVersion").and_then(Value::as_str);
    if requested.is_none() {
        let e = McpError::invalid_params(
            "Invalid params: initialize needs a string \"protocolVersion\"",
        )
        .with_status(StatusCode::BAD_REQUEST);
        return error_response(&r.id, &e);
    }
    let negotiated = version::negotiate_session(requested);
    let record = SessionRecord {
        protocol_version: negotiated.to_owned(),
        client_info: r.params.get("clientInfo").cloned().unwrap_or(Value::Null),
        client_capabilities: r.params.get("capabilities").cloned().unwrap_or(Value::Null),
        created_ms: now_ms(),
        log_level: None,
        resource_subscriptions: Vec::new(),
    };
    let session = match app.sessions.create(&record).await {
        Ok(s) => s,
        Err(e) => return error_response(&r.id, &store_unavailable(e)),
    };
    tracing::info!(protocol = negotiated, "session created");
    let mut capabilities = methods::capabilities();
    if negotiated >= "2025-11-25" {
        capabilities["tasks"] = session_tasks::capability();
    }
    let result = json!({
        "protocolVersion": negotiated,
        "capabilities": capabilities,
        "serverInfo": methods::server_info(),
        "instructions": "Tools served by mcpbus workers over NATS JetStream.",
    });
    let mut resp = json_response(StatusCode::OK, &result_message(&r.id, result));
    resp.headers_mut().insert(
        header::SESSION_ID,
        HeaderValue::from_str(session.as_str()).expect("session ids are header-safe"),
    );
    resp
}

/// Who is calling: what the session negotiated at `initialize`.
fn caller(session: SessionRecord) -> Caller {
    Caller {
        lane: Lane::Session,
        protocol_version: session.protocol_version,
        client_capabilities: session.client_capabilities,
    }
}

/// How session-lane call updates are rendered for `session`.
pub fn session_reply(
    id: Value,
    progress_token: Option<Value>,
    session: &SessionRecord,
) -> CallReply {
    CallReply {
        id,
        progress_token,
        // Without logging/setLevel, a session receives every log message.
        min_log: Some(
            session
                .log_level
                .as_deref()
                .and_then(methods::log_severity)
                .unwrap_or(0),
        ),
        finish: |_| {},
        extra: None,
        mrtr: None,
        related_task: None,
    }
}

async fn dispatch(app: &App, r: Request, id: SessionId, session: SessionRecord) -> Response {
    match r.method.as_str() {
        "ping" => json_response(StatusCode::OK, &result_message(&r.id, json!({}))),
        "logging/setLevel" => {
            let level = r
                .params
                .get("level")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if methods::log_severity(level).is_none() {
                let e = McpError::invalid_params(format!(
                    "Invalid params: unknown log level {level:?}"
                ));
                return error_response(&r.id, &e);
            }
            let level = level.to_owned();
            match app
                .sessions
                .modify(&id, |s| s.log_level = Some(level))
                .await
            {
                Ok(true) => json_response(StatusCode::OK, &result_message(&r.id, json!({}))),
                Ok(false) => error_response(&r.id, &session_not_found()),
                Err(e) => error_response(&r.id, &store_unavailable(e)),
            }
        }
        "tools/list" => match methods::tools_list(app, &r.params) {
            Ok(result) => json_response(StatusCode::OK, &result_message(&r.id, result)),
            Err(e) => error_response(&r.id, &e),
        },
        "tools/call" => {
            // Tasks exist from 2025-11-25 on; earlier revisions ignore `params.task`.
            let name = r.params.get("name").and_then(Value::as_str).unwrap_or("");
            if session.protocol_version.as_str() >= "2025-11-25" {
                if let Lookup::Live(route) = app.catalog.snapshot().lookup(name) {
                    let as_task = r.params.get("task").is_some_and(Value::is_object);
                    match (as_task, tasks::task_support(route)) {
                        (true, "forbidden") | (false, "required") => {
                            return error_response(&r.id, &session_tasks::wrong_mode(name, as_task))
                        }
                        (true, _) => {
                            let route = route.clone();
                            return session_tasks::call(app, &r, route, caller(session), &id).await;
                        }
                        _ => {}
                    }
                }
            }
            let progress_token = r.meta("progressToken").cloned();
            let reply = session_reply(r.id.clone(), progress_token.clone(), &session);
            let caller = caller(session);
            let stored =
                methods::tools_call_stored(app, &r, caller, &id, progress_token.clone()).await;
            let stream = match stored {
                Ok(s) => s,
                Err(e) => return error_response(&r.id, &e),
            };
            if app.config.sse_tool_calls {
                reply.sse(
                    CallFeed::Stored(Box::new(stream)),
                    app.config.sse_keep_alive,
                    app.release.clone(),
                )
            } else {
                reply.json(CallFeed::Stored(Box::new(stream))).await
            }
        }
        "resources/subscribe" | "resources/unsubscribe" => {
            let Some(uri) = r
                .params
                .get("uri")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                let e = McpError::invalid_params("Invalid params: a string \"uri\" is required");
                return error_response(&r.id, &e);
            };
            let subscribe = r.method == "resources/subscribe";
            let changed = app
                .sessions
                .modify(&id, |s| {
                    s.resource_subscriptions.retain(|u| *u != uri);
                    if subscribe {
                        s.resource_subscriptions.push(uri);
                    }
                })
                .await;
            match changed {
                Ok(true) => json_response(StatusCode::OK, &result_message(&r.id, json!({}))),
                Ok(false) => error_response(&r.id, &session_not_found()),
                Err(e) => error_response(&r.id, &store_unavailable(e)),
            }
        }
        m if methods::list_kind(m).is_some() => {
            let kind = methods::list_kind(m).expect("checked");
            match methods::list_items(app, kind, &r.params) {
                Ok(result) => json_response(StatusCode::OK, &result_message(&r.id, result)),
                Err(e) => error_response(&r.id, &e),
            }
        }
        m if methods::is_routed_read(m) => {
            let caller = caller(session);
            match methods::routed_read(app, &r, caller).await {
                Ok(call) => {
                    let reply = CallReply {
                        id: r.id,
                        progress_token: None,
                        min_log: None,
                        finish: |_| {},
                        extra: None,
                        mrtr: None,
                        related_task: None,
                    };
                    reply.json(CallFeed::Core(Box::new(call))).await
                }
                Err(e) => error_response(&r.id, &e),
            }
        }
        "tasks/get" | "tasks/result" | "tasks/cancel"
            if session.protocol_version.as_str() >= "2025-11-25" =>
        {
            session_tasks::handle(app, &r, &id).await
        }
        other => error_response(&r.id, &McpError::method_not_found(other)),
    }
}

/// Hands the client's answer to a server request to the worker waiting for it, wherever it
/// runs. Answers to ids we did not issue are accepted and dropped, as the transport allows.
async fn forward_answer(app: &App, answer: &Value) {
    let Some((call, seq)) = answer["id"].as_str().and_then(parse_client_request_id) else {
        tracing::debug!(id = %answer["id"], "ignoring a response to an id we did not issue");
        return;
    };
    let error = answer.get("error").map(|e| WireError {
        code: e["code"]
            .as_i64()
            .unwrap_or(crate::error::code::INTERNAL_ERROR),
        message: e["message"].as_str().unwrap_or_default().to_owned(),
        data: e.get("data").cloned(),
    });
    let body = ClientAnswer {
        protocol: PROTOCOL_VERSION,
        result: answer.get("result").cloned(),
        error,
    };
    if let Err(e) = app
        .nats
        .publish(subjects::client_answer(call, seq), encode(&body))
        .await
    {
        tracing::warn!(error = %e, "could not forward the client's answer");
    }
}

/// `DELETE /mcp`: ends the session named by `MCP-Session-Id`.
pub async fn delete(app: &App, headers: &HeaderMap) -> Response {
    let (id, _) = match find_session(app, headers).await {
        Ok(found) => found,
        Err(e) => return error_response(&Value::Null, &e),
    };
    match app.sessions.delete(&id).await {
        Ok(true) => {
            // The session's stored events go with it (ADR 0003, point 5).
            let purge = app
                .events
                .events
                .purge()
                .filter(bus_schema::subjects::session_events_all(id.as_str()))
                .await;
            if let Err(e) = purge {
                tracing::warn!(error = %e, "could not purge an ended session's events; they age out");
            }
            tracing::info!("session ended by client");
            json_response(StatusCode::OK, &json!({}))
        }
        Ok(false) => error_response(&Value::Null, &session_not_found()),
        Err(e) => error_response(&Value::Null, &store_unavailable(e)),
    }
}

pub fn check_version_header(headers: &HeaderMap) -> Result<(), McpError> {
    let Some(value) = headers.get(header::PROTOCOL_VERSION) else {
        tracing::trace!(
            assumed = DEFAULT_SESSION_VERSION,
            "no MCP-Protocol-Version header"
        );
        return Ok(());
    };
    let v = value.to_str().unwrap_or("");
    if SESSION_VERSIONS.contains(&v) {
        Ok(())
    } else {
        Err(McpError::invalid_request(format!(
            "Bad Request: unsupported MCP-Protocol-Version {v:?} for a session (supported: {})",
            SESSION_VERSIONS.join(", ")
        )))
    }
}

pub async fn find_session(
    app: &App,
    headers: &HeaderMap,
) -> Result<(SessionId, SessionRecord), McpError> {
    let raw = headers
        .get(header::SESSION_ID)
        .ok_or_else(|| {
            McpError::invalid_request(
                "Bad Request: MCP-Session-Id header is required (send initialize first to get one)",
            )
        })?
        .to_str()
        .unwrap_or("");
    let id = SessionId::parse(raw).ok_or_else(session_not_found)?;
    match app.sessions.get(&id).await {
        Ok(Some(record)) => Ok((id, record)),
        Ok(None) => Err(session_not_found()),
        Err(e) => Err(store_unavailable(e)),
    }
}

fn session_not_found() -> McpError {
    McpError::new(
        StatusCode::NOT_FOUND,
        code::INVALID_REQUEST,
        "Session not found: it never existed, was ended, or expired; initialize a new one",
    )
}

pub fn store_unavailable(e: crate::session::SessionError) -> McpError {
    tracing::warn!(error = %e, "session store error");
    McpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code::INTERNAL_ERROR,
        format!("Service Unavailable: {e}"),
    )
}
