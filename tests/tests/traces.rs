//! Traces end to end (ADR 0020), received by a real OpenTelemetry collector (`rotel`):
//!
//! - a `tools/call` through gateway A to a Rust worker, the client's context in the HTTP
//!   `traceparent` header, is one trace: HTTP span, MCP span, auth and policy, the publish,
//!   the time in the queue and the worker's handler;
//! - through gateway B to a Python SDK worker (header), and to a bridged server with the
//!   client's context in `params._meta` only (SEP-414): the bridged server (the official
//!   Python MCP SDK, with its own OpenTelemetry middleware) continues the trace from the
//!   `_meta` the bridge gave it;
//! - every span has the parent it should, and the client's trace id is kept;
//! - with `--log-format json`, log lines parse and carry the trace id and the call id.

use std::time::Duration;

use harness::mcp::{post, send_raw, stateless, Session, MODERN};
use harness::otel::{Collector, Span};
use harness::secure_nats::Access;
use harness::{workspace_root, Cluster};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// A client's trace context: a fresh trace id (so runs never mix) and the client span's id.
fn client_context() -> (String, String, String) {
    let trace_id = format!("{:032x}", rand_u128());
    let span_id = "00f067aa0ba902b7".to_owned();
    let traceparent = format!("00-{trace_id}-{span_id}-01");
    (trace_id, span_id, traceparent)
}

fn rand_u128() -> u128 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (t << 32) ^ u128::from(std::process::id()) | 1
}

fn with_env(mut access: Access, env: Vec<(String, String)>) -> Access {
    access.env.extend(env);
    access
}

/// The one span named `name` (of `service`).
fn one<'a>(spans: &'a [Span], service: &str, name: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service == service && s.name == name)
        .collect();
    assert_eq!(found.len(), 1, "one {service} span {name:?} in {spans:#?}");
    found[0]
}

fn has(spans: &[Span], service: &str, name: &str) -> bool {
    spans.iter().any(|s| s.service == service && s.name == name)
}

/// Whether every `(service, span name)` has arrived: each process exports on its own
/// schedule, so a trace is complete only when all of them are in.
fn all_in(spans: &[Span], expected: &[(&str, &str)]) -> bool {
    expected
        .iter()
        .all(|(service, name)| has(spans, service, name))
}

/// Asserts `child`'s parent is `parent`.
fn child_of(child: &Span, parent: &Span) {
    assert_eq!(
        child.parent_id.as_deref(),
        Some(parent.span_id.as_str()),
        "{} ({}) should be a child of {} ({})",
        child.name,
        child.service,
        parent.name,
        parent.service
    );
}

/// Every span but the roots named has its parent in the trace: nothing is orphaned.
fn connected(spans: &[Span], outside_parent: &str) {
    for s in spans {
        let parent = s.parent_id.as_deref().expect("no span is a root");
        assert!(
            parent == outside_parent || spans.iter().any(|p| p.span_id == parent),
            "{} ({}) has a parent outside the trace: {spans:#?}",
            s.name,
            s.service
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_through_gateway_a_to_a_rust_worker_is_one_trace() {
    let mut c = Cluster::start(0, &[]).await.unwrap();
    let collector = Collector::start(c.dir.path()).unwrap();
    let gw = Access::servers(&c.nats.gateway_url());
    c.add_gateway_with(&with_env(gw, collector.env("gateway-a")), &[])
        .await
        .unwrap();
    let worker = Access::servers(&c.nats.worker_url("demo"));
    c.add_worker_with(&with_env(worker, collector.env("worker-rust")), &["demo"])
        .unwrap();
    c.wait_for_tools(&harness::DEMO_TOOLS, WAIT).await.unwrap();

    let (trace_id, client_span, traceparent) = client_context();
    let session = Session::open(&c.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "traced"}}});
    let resp = post(
        &session.url,
        &[
            ("mcp-session-id", &session.id),
            ("mcp-protocol-version", &session.version),
            ("traceparent", &traceparent),
            ("tracestate", "mcpbus=test"),
        ],
        &call,
    )
    .await
    .unwrap();
    assert!(resp.response().unwrap()["result"].is_object(), "{resp:?}");

    let spans = collector
        .wait_for_trace(&trace_id, WAIT, |s| {
            all_in(
                s,
                &[
                    ("gateway-a", "POST /mcp"),
                    ("gateway-a", "mcpbus.auth"),
                    ("gateway-a", "tools/call echo"),
                    ("gateway-a", "mcpbus.policy"),
                    ("gateway-a", "send mcpbus.v2.call.demo"),
                    ("worker-rust", "mcpbus.queue"),
                    ("worker-rust", "execute_tool echo"),
                ],
            )
        })
        .await
        .unwrap();
    let http = one(&spans, "gateway-a", "POST /mcp");
    assert_eq!(http.parent_id.as_deref(), Some(client_span.as_str()));
    assert_eq!(http.kind, "SPAN_KIND_SERVER");
    assert_eq!(http.attr("http.response.status_code"), Some("200"));
    let auth = one(&spans, "gateway-a", "mcpbus.auth");
    child_of(auth, http);
    let mcp = one(&spans, "gateway-a", "tools/call echo");
    child_of(mcp, http);
    assert_eq!(mcp.attr("mcp.method.name"), Some("tools/call"));
    assert_eq!(mcp.attr("gen_ai.tool.name"), Some("echo"));
    assert_eq!(mcp.attr("mcp.session.id"), Some(session.id.as_str()));
    let call_id = mcp.attr("call_id").expect("the MCP span names the call");
    let policy = one(&spans, "gateway-a", "mcpbus.policy");
    child_of(policy, mcp);
    let publish = one(&spans, "gateway-a", "send mcpbus.v2.call.demo");
    child_of(publish, mcp);
    assert_eq!(publish.kind, "SPAN_KIND_PRODUCER");
    assert_eq!(publish.attr("messaging.message.id"), Some(call_id));
    let queue = one(&spans, "worker-rust", "mcpbus.queue");
    child_of(queue, publish);
    let handler = one(&spans, "worker-rust", "execute_tool echo");
    child_of(handler, publish);
    assert_eq!(handler.attr("call_id"), Some(call_id));
    assert_eq!(handler.attr("gen_ai.tool.name"), Some("echo"));
    // The queue span starts when JetStream stored the call and ends when it was pulled.
    assert!(queue.start_ns >= publish.start_ns.saturating_sub(5_000_000));
    assert!(queue.end_ns <= handler.start_ns + 5_000_000);
    connected(&spans, &client_span);

    // Resuming the call's stream (`Last-Event-ID`) is a replay span under the GET's span.
    let first_id = resp
        .body
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .map(str::trim)
        .expect("the call's SSE events have ids")
        .to_owned();
    let (trace_id, client_span, traceparent) = client_context();
    let replayed = send_raw(
        reqwest::Method::GET,
        &session.url,
        &[
            ("accept", "text/event-stream"),
            ("mcp-session-id", &session.id),
            ("last-event-id", &first_id),
            ("traceparent", &traceparent),
        ],
    )
    .await
    .unwrap();
    assert!(replayed.response().unwrap()["result"].is_object());
    let spans = collector
        .wait_for_trace(&trace_id, WAIT, |s| {
            all_in(
                s,
                &[("gateway-a", "mcpbus.replay"), ("gateway-a", "GET /mcp")],
            )
        })
        .await
        .unwrap();
    let get = one(&spans, "gateway-a", "GET /mcp");
    assert_eq!(get.parent_id.as_deref(), Some(client_span.as_str()));
    let replay = one(&spans, "gateway-a", "mcpbus.replay");
    child_of(replay, get);
    assert_eq!(replay.attr("call_id"), Some(call_id));
}

/// A protocol we do not speak stops the process at start, saying what to use instead.
#[test]
fn otlp_over_grpc_is_refused_at_start() {
    for program in ["mcpbus-gateway", "mcpbus-worker"] {
        let mut cmd = std::process::Command::new(harness::bin(program));
        if program == "mcpbus-worker" {
            cmd.arg("demo");
        }
        let out = cmd
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env("MCPBUS_NATS_URL", "nats://127.0.0.1:1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{program}: {stderr}");
        assert!(
            stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported")
                && stderr.contains("http/protobuf"),
            "{program}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_through_gateway_b_to_a_python_worker_and_a_bridged_server_are_traced() {
    let mut c = Cluster::start(1, &[]).await.unwrap();
    let collector = Collector::start(c.dir.path()).unwrap();
    let gw = Access::servers(&c.nats.gateway_url());
    c.add_gateway_with(&with_env(gw, collector.env("gateway-b")), &[])
        .await
        .unwrap();
    let py = Access::servers(&c.nats.worker_url("py-example"));
    let _py = c
        .start_python_worker_with(&with_env(py, collector.env("worker-python")))
        .unwrap();
    let bridge = Access::servers(&c.nats.worker_url("pyserver"));
    let endpoint = format!("OTEL_EXPORTER_OTLP_ENDPOINT={}", collector.endpoint());
    let server = workspace_root().join("tests/clients/py_server.py");
    let python = harness::venv_python();
    c.add_worker_with(
        &with_env(bridge, collector.env("worker-bridge")),
        &[
            "--pool",
            "pyserver",
            "bridge",
            "stdio",
            "--env",
            &endpoint,
            "--env",
            "OTEL_SERVICE_NAME=bridged-server",
            "--",
            python.to_str().unwrap(),
            server.to_str().unwrap(),
        ],
    )
    .unwrap();
    // Gateway B is the second one; A (no tracing) only shows the other gateways are unmoved.
    let url = c.gateway_urls()[1].clone();
    wait_listed(&url, &["py_add", "py_server_shout"]).await;

    // The Python worker, the client's context in the HTTP header.
    let (trace_id, client_span, traceparent) = client_context();
    let resp = post(
        &url,
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "py_add"),
            ("traceparent", &traceparent),
        ],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "py_add", "arguments": {"a": 2, "b": 3},
            "_meta": harness::mcp::modern_meta()}}),
    )
    .await
    .unwrap();
    assert!(resp.response().unwrap()["result"].is_object(), "{resp:?}");
    let spans = collector
        .wait_for_trace(&trace_id, WAIT, |s| {
            all_in(
                s,
                &[
                    ("gateway-b", "POST /mcp"),
                    ("gateway-b", "tools/call py_add"),
                    ("gateway-b", "send mcpbus.v2.call.py-example"),
                    ("worker-python", "mcpbus.queue"),
                    ("worker-python", "execute_tool py_add"),
                ],
            )
        })
        .await
        .unwrap();
    let http = one(&spans, "gateway-b", "POST /mcp");
    assert_eq!(http.parent_id.as_deref(), Some(client_span.as_str()));
    let mcp = one(&spans, "gateway-b", "tools/call py_add");
    child_of(mcp, http);
    let publish = one(&spans, "gateway-b", "send mcpbus.v2.call.py-example");
    child_of(publish, mcp);
    child_of(one(&spans, "worker-python", "mcpbus.queue"), publish);
    let handler = one(&spans, "worker-python", "execute_tool py_add");
    child_of(handler, publish);
    assert_eq!(handler.attr("call_id"), mcp.attr("call_id"));
    connected(&spans, &client_span);

    // The bridged server, the client's context in `_meta` only (SEP-414).
    let (trace_id, client_span, traceparent) = client_context();
    let resp = stateless(
        &url,
        "tools/call",
        json!({"name": "py_server_shout", "arguments": {"text": "hey"},
            "_meta": {"traceparent": traceparent}}),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.response().unwrap()["result"]["content"][0]["text"],
        "HEY",
        "{resp:?}"
    );
    let spans = collector
        .wait_for_trace(&trace_id, WAIT, |s| {
            all_in(
                s,
                &[
                    ("gateway-b", "tools/call py_server_shout"),
                    ("gateway-b", "send mcpbus.v2.call.pyserver"),
                    ("worker-bridge", "mcpbus.queue"),
                    ("worker-bridge", "execute_tool py_server_shout"),
                    ("bridged-server", "tools/call py_server_shout"),
                ],
            )
        })
        .await
        .unwrap();
    let mcp = one(&spans, "gateway-b", "tools/call py_server_shout");
    assert_eq!(mcp.parent_id.as_deref(), Some(client_span.as_str()));
    let publish = one(&spans, "gateway-b", "send mcpbus.v2.call.pyserver");
    child_of(publish, mcp);
    child_of(one(&spans, "worker-bridge", "mcpbus.queue"), publish);
    let handler = one(&spans, "worker-bridge", "execute_tool py_server_shout");
    child_of(handler, publish);
    // The official Python MCP SDK's server span, from the `_meta` the bridge sent.
    let bridged = one(&spans, "bridged-server", "tools/call py_server_shout");
    child_of(bridged, handler);
    assert_eq!(bridged.kind, "SPAN_KIND_SERVER");
    // The HTTP span carried no context of its own: it is a trace apart, which the MCP span
    // links to, and is not part of this one.
    assert!(!has(&spans, "gateway-b", "POST /mcp"));
    connected(&spans, &client_span);
}

/// Waits until `url` lists every tool in `names`.
async fn wait_listed(url: &str, names: &[&str]) {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let tools = harness::mcp::list_tool_names_stateless(url)
            .await
            .unwrap_or_default();
        if names.iter().all(|n| tools.iter().any(|t| t == n)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{names:?} never listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines_parse_and_carry_the_trace_and_call_ids() {
    let mut c = Cluster::start(0, &[]).await.unwrap();
    let gw = Access::servers(&c.nats.gateway_url()).env("MCPBUS_LOG_FORMAT", "json");
    // A debug line inside the call, so that the gateway logs something while it runs.
    let gw = gw.env("RUST_LOG", "info,async_nats=warn,mcpbus_gateway=debug");
    c.add_gateway_with(&gw, &[]).await.unwrap();
    let worker = Access::servers(&c.nats.worker_url("demo"))
        .env("MCPBUS_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,async_nats=warn,mcpbus_worker_sdk=debug");
    c.add_worker_with(&worker, &["demo"]).unwrap();
    c.wait_for_tools(&harness::DEMO_TOOLS, WAIT).await.unwrap();

    let (trace_id, _, traceparent) = client_context();
    let resp = post(
        &c.gateway_urls()[0],
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
            ("traceparent", &traceparent),
        ],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"text": "logged"},
            "_meta": harness::mcp::modern_meta()}}),
    )
    .await
    .unwrap();
    assert!(resp.response().unwrap()["result"].is_object(), "{resp:?}");

    for proc in [&c.gateways[0].proc, &c.workers[0]] {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let log = proc.log_text();
            let lines: Vec<Value> = log
                .lines()
                .map(|l| {
                    serde_json::from_str(l)
                        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {l:?}", proc.name))
                })
                .collect();
            assert!(
                lines.iter().all(|l| l["timestamp"].is_string()
                    && l["level"].is_string()
                    && l["target"].is_string()),
                "{lines:#?}"
            );
            assert!(!log.contains('\u{1b}'), "no ANSI escapes in a file");
            let in_call: Vec<&Value> = lines
                .iter()
                .filter(|l| l["trace_id"] == trace_id.as_str())
                .collect();
            // The gateway's lines before the call is queued (auth, parsing) have no call id
            // yet; the worker's lines all do.
            let named = in_call.iter().filter(|l| l["call_id"].is_string()).count();
            if named > 0 {
                if proc.name.starts_with("worker") {
                    assert_eq!(named, in_call.len(), "{in_call:#?}");
                }
                break;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{}: no line with trace id {trace_id}:\n{log}",
                proc.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
