//! What a client can make the cluster store or hold is capped (issue 12, finding 1 and 2):
//! oversized declarations, request ids, progress tokens, subscriptions and cursors are
//! refused with 400, a JSON-RPC code and a message that names the limit, and nothing of
//! them is stored. Every attack here is a handful of requests on loopback.

use std::time::Duration;

use harness::mcp::{post, stateless, Session};
use harness::Cluster;
use serde_json::{json, Value};

/// Waits at most 10 s: without a cap, some of these requests would open a stream.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("answered in time")
}

fn refused(resp: &harness::mcp::Resp, code: i64, limit: &str, case: &str) {
    assert_eq!(
        (resp.status, resp.error_code()),
        (400, Some(code)),
        "{case}: {}",
        resp.body
    );
    let body: Value = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(body["error"]["data"]["limit"], limit, "{case}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too large"),
        "{case}: {}",
        resp.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_initialize_creates_no_session() {
    let cluster = Cluster::start(1, &[]).await.unwrap();
    let url = &cluster.gateway_urls()[0];
    let huge = "x".repeat(900 * 1024);
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {"experimental": {"pad": huge}},
        "clientInfo": {"name": "attacker", "version": "0"}
    }});
    let resp = bounded(post(url, &[], &init)).await.unwrap();
    refused(&resp, -32602, "client_declaration_bytes", "capabilities");
    assert!(resp.header("mcp-session-id").is_none(), "no session stored");

    let sessions = cluster.nats.client().await;
    let js = async_nats::jetstream::new(sessions);
    let kv = js.get_key_value("mcpbus-sessions").await.unwrap();
    let keys = futures::StreamExt::collect::<Vec<_>>(kv.keys().await.unwrap()).await;
    assert!(keys.is_empty(), "the refused initialize stored nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_ids_tokens_cursors_and_subscriptions_are_refused() {
    // Hundreds of requests in a burst: faster than the default request rate allows.
    let cluster = harness::demo_cluster(1, &harness::LOAD_FROM_LOOPBACK).await;
    let url = &cluster.gateway_urls()[0];
    let big = "y".repeat(400 * 1024);

    // Session lane: a 400 KB request id and progress token on tools/call.
    let s = Session::open(url, "2025-11-25").await.unwrap();
    let call = json!({"jsonrpc": "2.0", "id": big, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}}});
    let r = bounded(s.post(&call)).await.unwrap();
    refused(&r, -32600, "request_id_bytes", "session request id");
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}, "_meta": {"progressToken": big}}});
    let r = bounded(s.post(&call)).await.unwrap();
    refused(&r, -32602, "progress_token_bytes", "session progress token");

    // A cursor no page of ours could have produced.
    let r = bounded(s.request("tools/list", json!({"cursor": "c".repeat(8192)})))
        .await
        .unwrap();
    refused(&r, -32602, "cursor_bytes", "cursor");

    // Subscriptions a session keeps: one URI too long, then one too many.
    let r = bounded(s.request("resources/subscribe", json!({"uri": "u".repeat(4096)})))
        .await
        .unwrap();
    refused(&r, -32602, "uri_bytes", "subscribed uri");
    for i in 0..256 {
        let r = s
            .request(
                "resources/subscribe",
                json!({"uri": format!("file:///{i}")}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "subscription {i}: {}", r.body);
    }
    let r = bounded(s.request("resources/subscribe", json!({"uri": "file:///one-more"})))
        .await
        .unwrap();
    refused(&r, -32602, "resource_subscriptions", "257th subscription");
    // Subscribing again to one it has is not a new entry.
    let r = s
        .request("resources/subscribe", json!({"uri": "file:///3"}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // Stateless lane: a listen stream asking to follow 100 000 URIs is never opened.
    let uris: Vec<String> = (0..100_000).map(|i| format!("file:///{i}")).collect();
    let r = bounded(stateless(
        url,
        "subscriptions/listen",
        json!({"notifications": {"resourceSubscriptions": uris}}),
    ))
    .await
    .unwrap();
    refused(&r, -32602, "resource_subscriptions", "listen filter");
    let r = bounded(stateless(
        url,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}, "_meta": {"progressToken": big}}),
    ))
    .await
    .unwrap();
    refused(
        &r,
        -32602,
        "progress_token_bytes",
        "stateless progress token",
    );

    // Honest requests still work.
    let echoed = s.call("echo", json!({"text": "still here"})).await.unwrap();
    assert_eq!(harness::texts(&echoed["result"]), ["still here"]);
}
