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

#[tokio::test(flavor = "multi_thread")]
async fn session_lane_status_rules() {
    let cluster = Cluster::start(1, &[]).await.unwrap();
    let url = &cluster.gateway_urls()[0];
    let s = Session::open(url, "2025-11-25").await.unwrap();

    // No session id → 400.
    let r = post(url, &[], &list()).await.unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_code(), Some(-32600));
    // Unknown session id, or one that cannot be ours → 404.
    for bogus in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "../../etc",
        "a.b.*",
    ] {
        let r = post(url, &[("mcp-session-id", bogus)], &list())
            .await
            .unwrap();
        assert_eq!(r.status, 404, "{bogus}: {}", r.body);
    }
    // Unsupported MCP-Protocol-Version → 400.
    let r = post(
        url,
        &[
            ("mcp-session-id", &s.id),
            ("mcp-protocol-version", "1999-01-01"),
        ],
        &list(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    // No MCP-Protocol-Version header: assumed 2025-03-26, accepted.
    let r = post(url, &[("mcp-session-id", &s.id)], &list())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // Unknown method → -32601.
    let r = s.request("no/such/method", json!({})).await.unwrap();
    assert_eq!(r.error_code(), Some(-32601));
    // DELETE without a session → 400.
    let r = send_raw(Method::DELETE, url, &[]).await.unwrap();
    assert_eq!(r.status, 400);
    // initialize without protocolVersion → -32602.
    let r = post(
        url,
        &[],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32602)));
    // tools/call with arguments that are not an object → -32602.
    let r = s
        .request("tools/call", json!({"name": "echo", "arguments": [1]}))
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some(-32602));
}

#[tokio::test(flavor = "multi_thread")]
async fn transport_status_rules() {
    let cluster = Cluster::start(1, &["--max-body-bytes", "2048"])
        .await
        .unwrap();
    let url = &cluster.gateway_urls()[0];
    let body = list().to_string();

    for method in [Method::GET, Method::PUT, Method::PATCH] {
        let r = send_raw(method.clone(), url, &[("accept", ACCEPT_BOTH)])
            .await
            .unwrap();
        assert_eq!(r.status, 405, "{method}");
        assert!(r.header("allow").unwrap().contains("POST"));
    }
    let r = post_raw(
        url,
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ],
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 406);
    let r = post_raw(
        url,
        &[("content-type", "text/plain"), ("accept", ACCEPT_BOTH)],
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 415);
    let json_headers = [
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
    ];
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    let r = post_raw(url, &json_headers, big).await.unwrap();
    assert_eq!(r.status, 413);
    let r = post_raw(url, &json_headers, "{\"jsonrpc\": \"2.0\", oops")
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32700)));
    let r = post_raw(url, &json_headers, "[".repeat(500) + &"]".repeat(500))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (400, Some(-32700)),
        "deep nesting"
    );
    let r = post_raw(url, &json_headers, format!("[{body}]"))
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32600)), "batches");
    let r = post_raw(
        url,
        &json_headers,
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32600)));
    let r = post_raw(url, &json_headers, vec![0xff, 0xfe, 0x00])
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32700)), "not UTF-8");

    // DNS rebinding: a foreign Origin is 403, a foreign Host 421.
    let r = post(url, &[("origin", "https://evil.example")], &list())
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let r = post(url, &[("origin", "http://localhost:6274")], &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}})).await.unwrap();
    assert_eq!(r.status, 200, "a loopback Origin is allowed");
    let r = post(url, &[("host", "evil.example")], &list())
        .await
        .unwrap();
    assert_eq!(r.status, 421);

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
    let good = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/list"),
    ];

    let r = post(url, &good, &modern("tools/list", json!({})))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // Header/body disagreement → 400 -32020.
    let r = post(
        url,
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
        ],
        &modern("tools/list", json!({})),
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32020)));
    let r = post(
        url,
        &[("mcp-protocol-version", MODERN)],
        &modern("tools/list", json!({})),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (400, Some(-32020)),
        "missing Mcp-Method"
    );
    let r = post(
        url,
        &[("mcp-method", "tools/list")],
        &modern("tools/list", json!({})),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (400, Some(-32020)),
        "missing MCP-Protocol-Version"
    );
    let call = modern("tools/call", json!({"name": "echo", "arguments": {}}));
    let r = post(
        url,
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
        ],
        &call,
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (400, Some(-32020)),
        "missing Mcp-Name"
    );
    let r = post(
        url,
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "other"),
        ],
        &call,
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (400, Some(-32020)),
        "Mcp-Name mismatch"
    );
    // The Base64 sentinel form of Mcp-Name is decoded before comparing ("echo").
    let r = post(
        url,
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?ZWNobw==?="),
        ],
        &call,
    )
    .await
    .unwrap();
    assert_eq!(
        r.error_code(),
        Some(-32602),
        "passes header checks, then: unknown tool (no worker here)"
    );

    // Unsupported version → 400 -32022 listing what we support.
    let mut old = modern("tools/list", json!({}));
    old["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let r = post(
        url,
        &[
            ("mcp-protocol-version", "2099-01-01"),
            ("mcp-method", "tools/list"),
        ],
        &old,
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32022)));
    let data = &r.response().unwrap()["error"]["data"];
    assert!(data["supported"]
        .as_array()
        .unwrap()
        .contains(&json!(MODERN)));
    assert_eq!(data["requested"], "2099-01-01");

    // Methods this lane does not have → 404 -32601.
    for method in ["initialize", "ping"] {
        let r = post(
            url,
            &[("mcp-protocol-version", MODERN), ("mcp-method", method)],
            &modern(method, json!({})),
        )
        .await
        .unwrap();
        assert_eq!((r.status, r.error_code()), (404, Some(-32601)), "{method}");
    }

    // Missing clientCapabilities → 400 -32602.
    let mut no_caps = modern("tools/list", json!({}));
    no_caps["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let r = post(url, &good, &no_caps).await.unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32602)));
    // A modern header without the modern _meta → 400 -32602.
    let r = post(url, &good, &list()).await.unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32602)));
}
