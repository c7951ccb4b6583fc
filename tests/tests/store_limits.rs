//! Every stream and bucket is bounded (issue 12, finding 1; ADR 0007): a client cannot fill
//! the JetStream store, a write too large for a store is refused with 413, and a full store
//! answers 503 naming it, quickly. Small limits set by flags keep every attack tiny.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use bus_schema::topology;
use harness::mcp::{post, stateless};
use harness::Cluster;
use serde_json::{json, Value};

async fn limits_of(js: &jetstream::Context, name: &str) -> (i64, i32) {
    let mut s = js.get_stream(name).await.expect(name);
    let c = &s.info().await.expect(name).config;
    (c.max_bytes, c.max_message_size)
}

fn initialize(capabilities: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": capabilities,
        "clientInfo": {"name": "mcpbus-tests", "version": "0"}
    }})
}

fn message(r: &harness::mcp::Resp) -> String {
    r.response()
        .map(|m| m["error"]["message"].to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stream_and_bucket_has_a_byte_and_a_message_limit() {
    let cluster = Cluster::start(1, &["--store-sessions-max-bytes", "5000000"])
        .await
        .unwrap();
    let js = jetstream::new(cluster.nats.client().await);
    // Every stream mcpbus declares, KV buckets as their streams.
    for name in bus_schema::topology::stream_names() {
        let name = name.as_str();
        let (max_bytes, max_msg) = limits_of(&js, name).await;
        assert!(
            max_bytes > 0 && max_msg > 0,
            "{name}: {max_bytes} {max_msg}"
        );
    }
    // The flag reaches the bucket.
    assert_eq!(limits_of(&js, "KV_mcpbus-sessions").await.0, 5_000_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_unbounded_store_gets_the_limits() {
    // A deployment from before the limits: the sessions bucket exists, unbounded, with a
    // live session in it.
    let mut cluster = Cluster::start(0, &[]).await.unwrap();
    let js = jetstream::new(cluster.nats.client().await);
    let mut old = topology::kv_stream(topology::SESSIONS_KV, 1);
    old.max_bytes = -1;
    old.max_message_size = -1;
    js.create_stream(old).await.unwrap();
    let kv = js.get_key_value("mcpbus-sessions").await.unwrap();
    kv.put("old-session", "{}".into()).await.unwrap();

    cluster
        .add_gateway(&["--store-sessions-max-msg-bytes", "100000"])
        .await
        .unwrap();
    let (max_bytes, max_msg) = limits_of(&js, "KV_mcpbus-sessions").await;
    assert_eq!(
        (max_bytes, max_msg),
        (bus_schema::limits::SESSIONS_LIMITS.max_bytes, 100_000)
    );
    // Nothing stored was lost.
    assert!(kv.get("old-session").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_too_large_for_a_store_are_refused_with_413() {
    let cluster = harness::demo_cluster(
        1,
        &[
            "--store-sessions-max-msg-bytes",
            "4096",
            "--store-events-max-msg-bytes",
            "8192",
            "--store-calls-max-msg-bytes",
            "8192",
        ],
    )
    .await;
    let url = &cluster.gateway_urls()[0];
    let big = "x".repeat(20_000);
    // Under the request cap on declarations (16 KiB), over this store's record limit.
    let pad = "x".repeat(10_000);

    // initialize with capabilities larger than a session record may be.
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        post(url, &[], &initialize(json!({"experimental": {"pad": pad}}))),
    )
    .await
    .expect("answered quickly")
    .unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (413, Some(-32600)),
        "{}",
        r.body
    );
    assert!(
        message(&r).contains("too large for the session store"),
        "{}",
        r.body
    );

    // A normal session still works. (What a call stores in the event store, its request id
    // and progress token, is capped well below any sane event size by the request limits,
    // `tests/request_limits.rs`; the event store's 413 is unit-tested in `http/wire.rs`.)
    let s = harness::mcp::Session::open(url, "2025-11-25")
        .await
        .unwrap();
    let ok = s.call("echo", json!({"text": "hi"})).await.unwrap();
    assert!(ok.get("result").is_some(), "{ok}");

    // Stateless lane: arguments larger than a queued call may be.
    let r = stateless(
        url,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": big}}),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (413, Some(-32600)),
        "{}",
        r.body
    );
    assert!(
        message(&r).contains("too large for the call queue"),
        "{}",
        r.body
    );
}

// nats-server 2.9.10 evicts a KV bucket's oldest entries at its max_bytes instead of refusing
// (ADR 0007, "Known gap"); the gateway checks the room before creating a session, so the
// refusal holds there too.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_sessions_bucket_refuses_initialize_with_503_quickly() {
    // About 40 sessions' worth of records.
    let cluster = Cluster::start(1, &["--store-sessions-max-bytes", "12000"])
        .await
        .unwrap();
    let url = &cluster.gateway_urls()[0];
    let started = Instant::now();
    let mut opened = 0;
    let mut first_session = None;
    let js = jetstream::new(cluster.nats.client().await);
    let refused = loop {
        if opened >= 500 {
            let mut s = js.get_stream("KV_mcpbus-sessions").await.unwrap();
            let info = s.info().await.unwrap();
            panic!(
                "the sessions bucket never filled: {:?}, {:?}",
                info.config, info.state
            );
        }
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            post(url, &[], &initialize(json!({}))),
        )
        .await
        .expect("initialize answered quickly")
        .unwrap();
        if r.status == 200 {
            opened += 1;
            first_session = first_session.or(r.header("mcp-session-id").map(str::to_owned));
            continue;
        }
        break r;
    };
    assert!(opened > 0, "no session fitted: {}", refused.body);
    assert_eq!(
        (refused.status, refused.error_code()),
        (503, Some(-32603)),
        "{}",
        refused.body
    );
    assert!(
        message(&refused).contains("the session store is full"),
        "{}",
        refused.body
    );
    assert_eq!(
        refused.response().unwrap()["error"]["data"],
        json!({"reason": "store_full", "store": "KV_mcpbus-sessions"})
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // Refusing new sessions kept the live ones: the first is still there.
    let first = first_session.unwrap();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let r = post(
        url,
        &[
            ("mcp-session-id", &first),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        &list,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "the oldest session was evicted: {}", r.body);
}
