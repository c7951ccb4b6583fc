//! The spans of the `/mcp` edge (ADR 0020): the HTTP span of every request, the MCP span of
//! every JSON-RPC request, and keeping both open while an SSE response streams. Names and
//! attributes follow the OpenTelemetry semantic conventions for HTTP and MCP; everything
//! taken from the client is bounded, so a span name stays a name.

use axum::body::Body;
use axum::http::{header, HeaderMap, Method as HttpMethod};
use axum::response::Response;
use bus_schema::mcp::Method;
use futures::StreamExt;
use serde_json::Value;
use tracing::{field::Empty, Span};

use super::jsonrpc;

/// Longest client-given name (tool, prompt, request id, task id) put on a span.
const MAX_NAME_BYTES: usize = 64;

/// The HTTP server span of one `/mcp` request.
pub(super) fn http_span(method: &HttpMethod) -> Span {
    if !mcpbus_telemetry::enabled() {
        return tracing::info_span!("http", trace_id = Empty);
    }
    tracing::info_span!(
        "http",
        otel.name = %format_args!("{method} /mcp"),
        otel.kind = "server",
        http.request.method = %method,
        url.path = "/mcp",
        http.response.status_code = Empty,
        trace_id = Empty,
    )
}

/// The MCP server span of one request: named `{method} {tool or prompt}`. Its parent is set
/// by the caller (`_meta.traceparent`, else the HTTP span). `call_id` is filled in when the
/// request becomes a call on the bus.
pub(super) fn mcp_span(request: &jsonrpc::Request, headers: &HeaderMap) -> Span {
    if !mcpbus_telemetry::enabled() {
        // Only what log lines need: the attributes are for exported spans.
        return tracing::info_span!("mcp", trace_id = Empty, call_id = Empty);
    }
    // A method we do not know is `_OTHER` (the conventions' word), never the client's text.
    let method = Method::parse(&request.method).map_or("_OTHER", Method::as_str);
    let target = request
        .params
        .get("name")
        .and_then(Value::as_str)
        .filter(|_| matches!(method, "tools/call" | "prompts/get"))
        .map(bounded);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(bounded);
    let task_id = request
        .params
        .get("taskId")
        .and_then(Value::as_str)
        .map(bounded);
    let id = match &request.id {
        Value::Null => None,
        Value::String(s) => Some(bounded(s).to_owned()),
        other => Some(other.to_string()),
    };
    tracing::info_span!(
        "mcp",
        otel.name = %match target {
            Some(t) => format!("{method} {t}"),
            None => method.to_owned(),
        },
        otel.kind = "server",
        mcp.method.name = method,
        gen_ai.tool.name = target.filter(|_| method == "tools/call"),
        gen_ai.prompt.name = target.filter(|_| method == "prompts/get"),
        gen_ai.operation.name = (method == "tools/call").then_some("execute_tool"),
        jsonrpc.request.id = id.as_deref(),
        mcp.session.id = header("mcp-session-id"),
        mcp.protocol.version = header("mcp-protocol-version"),
        network.protocol.name = "http",
        network.transport = "tcp",
        // A later round of a multi round-trip request (it echoes `requestState`), or a
        // request about a task: each round has its own span.
        mcpbus.mrtr.retry = request.params.get("requestState").map(|_| true),
        mcpbus.task.id = task_id,
        trace_id = Empty,
        call_id = Empty,
    )
}

/// An SSE response goes on after the handler returns: with tracing on, `span` lasts until the
/// stream ends (the body holds it), so the trace shows the whole call.
pub(super) fn keep_span_open(response: Response, span: Span) -> Response {
    let streamed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !mcpbus_telemetry::enabled() || !streamed {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        let _open = &span;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}

/// At most [`MAX_NAME_BYTES`] of `s`, cut on a character boundary.
fn bounded(s: &str) -> &str {
    let mut end = MAX_NAME_BYTES.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::bounded;

    #[test]
    fn names_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("echo"), "echo");
        let long = "é".repeat(40); // 80 bytes
        assert_eq!(bounded(&long).len(), 64);
        assert!(bounded(&long).chars().all(|c| c == 'é'));
    }
}
