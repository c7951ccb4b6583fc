//! The HTTP edges: `/mcp` (both MCP lanes), `/healthz`, `/readyz`, the Protected Resource
//! Metadata (`auth`), and `/metrics` on a listener of its own.
//!
//! `POST /mcp` runs the transport checks shared by both lanes (`guard`), reads and parses
//! one JSON-RPC message (`jsonrpc`), then hands it to the edge of the lane it belongs to
//! (`session_lane`, `stateless_lane`). An edge checks its own transport rules, builds the
//! caller and its profile, and passes the request to the core (`crate::core`); `render`
//! turns the core's answer into a response, and `wire` maps its errors, once for both.
//! Before any of that, `auth` turns the bearer token into the caller's principal (or a 401
//! / 403 challenge); the edges put it on the `Caller` they build.

mod auth;
mod decorate;
mod guard;
mod headers;
mod jsonrpc;
mod listen;
mod param_headers;
mod render;
mod reply;
mod session_lane;
mod sse;
mod standalone;
mod stateless_lane;
mod trace;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};
use bus_schema::mcp::code;
use bus_schema::messages::Lane;
use bus_schema::principal::Principal;
use mcpbus_telemetry::TraceContext;
use serde_json::Value;
use tracing::{Instrument, Span};

use crate::app::App;
use crate::core::Origin;
use crate::quota::ClientKey;
use jsonrpc::{error_response, Incoming};
use trace::{keep_span_open, mcp_span};
use wire::{from_core, McpError};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/mcp", any(mcp))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(auth::METADATA_PATH, get(auth::resource_metadata))
        .route(auth::METADATA_PATH_MCP, get(auth::resource_metadata))
        .with_state(app)
}

/// `/metrics` alone, for its own listener (`--metrics-listen`): the MCP port serves MCP.
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", get(metrics))
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.not_ready_reason() {
        None => (StatusCode::OK, "ready").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::METRICS.render(),
    )
        .into_response()
}

/// Every `/mcp` request in its HTTP span (ADR 0020): the parent is the client's `traceparent`
/// header, and whatever the request sends on the bus carries the span's context (or, with
/// tracing off, the client's, else a new unsampled one, so log lines still share a trace id).
async fn mcp(
    State(app): State<Arc<App>>,
    method: axum::http::Method,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let span = trace::http_span(&method);
    let context = mcpbus_telemetry::continue_trace(&span, TraceContext::from_http(&headers));
    // Boxed: the wrappers then move a pointer, not the request's (large) state machine.
    let serve = Box::pin(serve(app, method, peer, headers, body));
    let response = mcpbus_telemetry::scope(context, serve)
        .instrument(span.clone())
        .await;
    span.record("http.response.status_code", response.status().as_u16());
    keep_span_open(response, span)
}

async fn serve(
    app: Arc<App>,
    method: axum::http::Method,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = guard::check_host_and_origin(
        &headers,
        &app.config.allowed_hosts,
        &app.config.allowed_origins,
    ) {
        return error_response(&Value::Null, &e);
    }
    // The peer is set by the connection layer; behind trusted proxies the client is the
    // address they name.
    let peer = peer.map(|Extension(ConnectInfo(p))| p);
    let client_of = |principal: Option<&Principal>| {
        ClientKey::of(principal, peer, &headers, app.quotas.trusted_proxies())
    };
    // Before a token costs a signature check or an introspection, its address pays: a flood
    // of bad tokens is throttled before it costs anything.
    if app.verifier.is_some() {
        if let Err(e) = app.quotas.address(&client_of(None)) {
            return error_response(&Value::Null, &from_core(&e.into(), Lane::Session));
        }
    }
    let principal = match auth::authenticate(&app, &headers)
        .instrument(mcpbus_telemetry::exported_only(|| {
            tracing::info_span!("mcpbus.auth")
        }))
        .await
    {
        Ok(principal) => principal,
        Err(challenge) => return challenge,
    };
    // Every request counts against its client (the principal, else the address).
    let client = client_of(principal.as_ref());
    if let Err(e) = app.quotas.request(&client) {
        return error_response(&Value::Null, &from_core(&e.into(), Lane::Session));
    }
    let origin = Origin { principal, client };
    match method {
        axum::http::Method::POST => post(app, origin, headers, body).await,
        axum::http::Method::DELETE => session_lane::delete(&app, origin, &headers).await,
        axum::http::Method::GET => standalone::get(&app, origin, &headers).await,
        _ => {
            let e = McpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                code::INVALID_REQUEST,
                format!("Method Not Allowed: {method} /mcp (use POST, GET for a session's stream, DELETE to end a session)"),
            );
            let mut resp = error_response(&Value::Null, &e);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            resp
        }
    }
}

async fn post(app: Arc<App>, origin: Origin, headers: HeaderMap, body: Body) -> Response {
    if let Err(e) =
        guard::check_content_type(&headers).and_then(|_| guard::check_post_accept(&headers))
    {
        return error_response(&Value::Null, &e);
    }
    let limit = app.config.max_body_bytes;
    // A client that trickles its body must not hold a request open forever.
    let read = tokio::time::timeout(app.config.body_read_timeout, to_bytes(body, limit)).await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        Err(_) => {
            let e = McpError::new(
                StatusCode::REQUEST_TIMEOUT,
                code::INVALID_REQUEST,
                "Request Timeout: the request body was not received in time",
            );
            return error_response(&Value::Null, &e);
        }
        Ok(Err(_)) => {
            let e = McpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::INVALID_REQUEST,
                format!("Payload Too Large: request bodies are limited to {limit} bytes"),
            );
            return error_response(&Value::Null, &e);
        }
    };
    let incoming = match jsonrpc::parse(&bytes, app.config.max_json_depth) {
        Ok(m) => m,
        Err(e) => return error_response(&Value::Null, &e),
    };
    let request = match &incoming {
        Incoming::Request(r) | Incoming::Notification(r) => Some(r),
        Incoming::Response(_) => None,
    };
    let span = match request {
        Some(r) => mcp_span(r, &headers),
        None => Span::none(),
    };
    let parent = request.and_then(|r| TraceContext::from_params(&r.params));
    if parent.is_some() {
        // The client's MCP span (SEP-414) is the parent; the HTTP span, whose context came
        // from the transport, is linked.
        if let Some(http) = mcpbus_telemetry::of_span(&Span::current()) {
            mcpbus_telemetry::link(&span, &http);
        }
    }
    let stateless = request.is_some_and(|r| stateless_lane::claims(r, &headers));
    let context = mcpbus_telemetry::continue_trace(&span, parent);
    let handled = Box::pin(async {
        if stateless {
            stateless_lane::handle(&app, origin, &headers, incoming).await
        } else {
            session_lane::handle(&app, origin, &headers, incoming).await
        }
    });
    let response = mcpbus_telemetry::scope(context, handled.instrument(span.clone())).await;
    keep_span_open(response, span)
}
