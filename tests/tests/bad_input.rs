//! Bad input gets the status and JSON-RPC code the transport specs require, and never
//! takes a node down.

use harness::mcp::{modern_meta, post, post_raw, send_raw, Session, ACCEPT_BOTH, MODERN};
use harness::Cluster;
use reqwest::Method;
use serde_json::{json, Value};

fn list() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
}

/// A stateless-lane request body with the modern `_meta`.
fn modern(method: &str, mut params: Value) -> Value {
    params["_meta"] = modern_meta();
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
}

/// POSTs `body` with the standard headers plus `headers`, and checks status and code.
async fn expect(
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
    status: u16,
    code: Option<i64>,
    case: &str,
) {
    let r = post(url, headers, body).await.unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (status, code),
        "{case}: {}",
        r.body
    );
}

/// Like [`expect`], for a raw body with exactly the given headers.
async fn expect_raw(
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
    status: u16,
    code: Option<i64>,
    case: &str,
) {
    let r = post_raw(url, headers, body).await.unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (status, code),
        "{case}: {}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn session_lane_status_rules() {
    let cluster = Cluster::start(1, &[]).await.unwrap();
    let url = &cluster.gateway_urls()[0];
    let s = Session::open(url, "2025-11-25").await.unwrap();
    let sid = s.id.as_str();

    expect(url, &[], &list(), 400, Some(-32600), "no session id").await;
    for bogus in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "../../etc",
        "a.b.*",
    ] {
        let r = post(url, &[("mcp-session-id", bogus)], &list())
            .await
            .unwrap();
        assert_eq!(r.status, 404, "unknown session {bogus}: {}", r.body);
    }
    let bad_version = [
        ("mcp-session-id", sid),
        ("mcp-protocol-version", "1999-01-01"),
    ];
    expect(
        url,
        &bad_version,
        &list(),
        400,
        Some(-32600),
        "unsupported MCP-Protocol-Version",
    )
    .await;
    expect(
        url,
        &[("mcp-session-id", sid)],
        &list(),
        200,
        None,
        "no version header: 2025-03-26 assumed",
    )
    .await;
    let unknown = json!({"jsonrpc": "2.0", "id": 1, "method": "no/such/method"});
    expect(
        url,
        &[("mcp-session-id", sid)],
        &unknown,
        200,
        Some(-32601),
        "unknown method",
    )
    .await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}});
    expect(
        url,
        &[],
        &init,
        400,
        Some(-32602),
        "initialize without protocolVersion",
    )
    .await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": [1]}});
    expect(
        url,
        &[("mcp-session-id", sid)],
        &call,
        200,
        Some(-32602),
        "arguments not an object",
    )
    .await;
    let loud = json!({"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "loud"}});
    expect(
        url,
        &[("mcp-session-id", sid)],
        &loud,
        200,
        Some(-32602),
        "unknown log level",
    )
    .await;
    let r = send_raw(Method::DELETE, url, &[]).await.unwrap();
    assert_eq!(r.status, 400, "DELETE without a session");
}

#[tokio::test(flavor = "multi_thread")]
async fn transport_status_rules() {
    let cluster = Cluster::start(1, &["--max-body-bytes", "2048"])
        .await
        .unwrap();
    let url = &cluster.gateway_urls()[0];
    let body = list().to_string();

    // GET opens a session's stream: it needs text/event-stream (406) and a session (400).
    let r = send_raw(Method::GET, url, &[("accept", "application/json")])
        .await
        .unwrap();
    assert_eq!(r.status, 406);
    let r = send_raw(Method::GET, url, &[("accept", "text/event-stream")])
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    for method in [Method::PUT, Method::PATCH] {
        let r = send_raw(method.clone(), url, &[("accept", ACCEPT_BOTH)])
            .await
            .unwrap();
        assert_eq!(r.status, 405, "{method}");
        assert!(r.header("allow").unwrap().contains("POST"));
    }
    let json_only = [
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    expect_raw(
        url,
        &json_only,
        body.clone(),
        406,
        Some(-32600),
        "Accept without SSE",
    )
    .await;
    let text = [("content-type", "text/plain"), ("accept", ACCEPT_BOTH)];
    expect_raw(
        url,
        &text,
        body.clone(),
        415,
        Some(-32600),
        "wrong Content-Type",
    )
    .await;

    let h = [
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
    ];
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    expect_raw(url, &h, big, 413, Some(-32600), "body over the limit").await;
    expect_raw(
        url,
        &h,
        "{\"jsonrpc\": \"2.0\", oops",
        400,
        Some(-32700),
        "malformed JSON",
    )
    .await;
    expect_raw(
        url,
        &h,
        "[".repeat(500) + &"]".repeat(500),
        400,
        Some(-32700),
        "deep nesting",
    )
    .await;
    expect_raw(url, &h, format!("[{body}]"), 400, Some(-32600), "batch").await;
    expect_raw(
        url,
        &h,
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
        400,
        Some(-32600),
        "not JSON-RPC 2.0",
    )
    .await;
    expect_raw(
        url,
        &h,
        vec![0xff, 0xfe, 0x00],
        400,
        Some(-32700),
        "not UTF-8",
    )
    .await;

    // DNS rebinding: a foreign Origin is 403, a foreign Host 421; loopback origins pass.
    expect(
        url,
        &[("origin", "https://evil.example")],
        &list(),
        403,
        Some(-32600),
        "foreign Origin",
    )
    .await;
    expect(
        url,
        &[("host", "evil.example")],
        &list(),
        421,
        Some(-32600),
        "foreign Host",
    )
    .await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}});
    expect(
        url,
        &[("origin", "http://localhost:6274")],
        &init,
        200,
        None,
        "loopback Origin",
    )
    .await;

    // Still alive and ready after all of that.
    harness::wait_ready(
        &cluster.gateways[0].base_url(),
        std::time::Duration::from_secs(2),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stateless_lane_error_codes() {
    let cluster = Cluster::start(1, &[]).await.unwrap();
    let url = &cluster.gateway_urls()[0];
    let pv = ("mcp-protocol-version", MODERN);
    let list_body = modern("tools/list", json!({}));
    let call = modern("tools/call", json!({"name": "echo", "arguments": {}}));

    expect(
        url,
        &[pv, ("mcp-method", "tools/list")],
        &list_body,
        200,
        None,
        "well-formed",
    )
    .await;

    // Header/body disagreement → 400 -32020.
    expect(
        url,
        &[pv, ("mcp-method", "tools/call")],
        &list_body,
        400,
        Some(-32020),
        "Mcp-Method mismatch",
    )
    .await;
    expect(
        url,
        &[pv],
        &list_body,
        400,
        Some(-32020),
        "missing Mcp-Method",
    )
    .await;
    expect(
        url,
        &[("mcp-method", "tools/list")],
        &list_body,
        400,
        Some(-32020),
        "missing MCP-Protocol-Version",
    )
    .await;
    expect(
        url,
        &[pv, ("mcp-method", "tools/call")],
        &call,
        400,
        Some(-32020),
        "missing Mcp-Name",
    )
    .await;
    let other = [pv, ("mcp-method", "tools/call"), ("mcp-name", "other")];
    expect(url, &other, &call, 400, Some(-32020), "Mcp-Name mismatch").await;
    // The Base64 sentinel form of Mcp-Name ("echo") is decoded before comparing; the request
    // then passes the header checks and meets the next error: no worker serves echo here.
    let encoded = [
        pv,
        ("mcp-method", "tools/call"),
        ("mcp-name", "=?base64?ZWNobw==?="),
    ];
    expect(
        url,
        &encoded,
        &call,
        200,
        Some(-32602),
        "sentinel-encoded Mcp-Name",
    )
    .await;

    // Unsupported version → 400 -32022 listing what we support.
    let mut future = list_body.clone();
    future["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let h = [
        ("mcp-protocol-version", "2099-01-01"),
        ("mcp-method", "tools/list"),
    ];
    let r = post(url, &h, &future).await.unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32022)));
    let data = &r.response().unwrap()["error"]["data"];
    assert!(data["supported"]
        .as_array()
        .unwrap()
        .contains(&json!(MODERN)));
    assert_eq!(data["requested"], "2099-01-01");

    // A header that disagrees with the body is -32020 even when the body's version is one we
    // do not speak.
    let h = [pv, ("mcp-method", "tools/list")];
    expect(
        url,
        &h,
        &future,
        400,
        Some(-32020),
        "version header disagrees with _meta",
    )
    .await;

    // Methods this lane does not have → 404 -32601.
    for method in ["initialize", "ping"] {
        expect(
            url,
            &[pv, ("mcp-method", method)],
            &modern(method, json!({})),
            404,
            Some(-32601),
            method,
        )
        .await;
    }

    // Missing clientCapabilities, or a modern header without the modern _meta → 400 -32602.
    let mut no_caps = list_body.clone();
    no_caps["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let good = [pv, ("mcp-method", "tools/list")];
    expect(
        url,
        &good,
        &no_caps,
        400,
        Some(-32602),
        "no clientCapabilities",
    )
    .await;
    expect(
        url,
        &good,
        &list(),
        400,
        Some(-32602),
        "modern header, legacy body",
    )
    .await;
}
