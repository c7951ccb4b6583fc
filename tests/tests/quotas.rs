//! Per-client quotas (ADR 0012), against real gateways: request rate, new sessions per
//! minute, calls in flight per session and per client, and listen streams per client. Each
//! refusal is 429 with `Retry-After`, JSON-RPC -32000 and `data.limit` naming the quota; a
//! client over its quota does not hold up anyone else.
//!
//! Every client here is on loopback, so distinct clients are told apart the way a gateway
//! behind an ingress does: the ingress (loopback, trusted) names the client in
//! `X-Forwarded-For`.

use std::time::Duration;

use harness::mcp::{listen, post, Resp, Session, ACCEPT_BOTH};
use harness::sse::SseStream;
use harness::{demo_cluster, Cluster};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);
const TRUST_LOOPBACK: [&str; 2] = ["--trusted-proxies", "127.0.0.0/8"];

fn assert_refused(r: &Resp, limit: &str) {
    assert_eq!(r.status, 429, "{}", r.body);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let msg = r.response().unwrap();
    assert_eq!(msg["error"]["code"], -32000, "{msg}");
    assert_eq!(msg["error"]["data"]["limit"], limit, "{msg}");
    assert!(msg["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Too Many Requests"));
}

/// A session opened by the client the ingress calls `client`.
async fn session_of(url: &str, client: &str) -> Session {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "mcpbus-tests", "version": "0"}}});
    let r = post(url, &[("x-forwarded-for", client)], &init)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    Session {
        url: url.to_owned(),
        id: r.header("mcp-session-id").unwrap().to_owned(),
        version: "2025-11-25".into(),
    }
}

/// A session-lane `tools/call` whose SSE stream stays open while the call runs.
async fn open_call(s: &Session, client: &str, id: i64, tool: &str, args: Value) -> SseStream {
    let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": args}});
    let req = reqwest::Client::new()
        .post(&s.url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .header("mcp-session-id", &s.id)
        .header("mcp-protocol-version", &s.version)
        .header("x-forwarded-for", client)
        .body(msg.to_string());
    SseStream::open(req).await.unwrap()
}

async fn call(s: &Session, client: &str, tool: &str, args: Value) -> Resp {
    let msg = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": tool, "arguments": args}});
    post(
        &s.url,
        &[
            ("mcp-session-id", &s.id),
            ("mcp-protocol-version", &s.version),
            ("x-forwarded-for", client),
        ],
        &msg,
    )
    .await
    .unwrap()
}

async fn cluster(args: &[&str]) -> Cluster {
    let mut all = TRUST_LOOPBACK.to_vec();
    all.extend_from_slice(args);
    demo_cluster(1, &all).await
}

#[tokio::test(flavor = "multi_thread")]
async fn one_client_cannot_tie_up_a_pool_and_leaving_does_not_free_its_slots() {
    // The demo worker runs 16 calls at once. Without a cap, 20 long waits from one client
    // fill it and everyone else queues behind them.
    let c = cluster(&[
        "--max-calls-per-session",
        "4",
        "--max-calls-per-client",
        "6",
    ])
    .await;
    let url = &c.gateway_urls()[0];
    let noisy = "198.51.100.1";
    let s1 = session_of(url, noisy).await;
    let mut running = Vec::new();
    for i in 0..4 {
        running.push(open_call(&s1, noisy, i, "wait", json!({"ms": 10_000})).await);
    }
    for _ in 0..16 {
        assert_refused(
            &call(&s1, noisy, "wait", json!({"ms": 10_000})).await,
            "calls_per_session",
        );
    }
    // A second session of the same client adds two more, up to the client's 6.
    let s2 = session_of(url, noisy).await;
    for i in 0..2 {
        running.push(open_call(&s2, noisy, 10 + i, "wait", json!({"ms": 10_000})).await);
    }
    assert_refused(
        &call(&s2, noisy, "wait", json!({"ms": 10_000})).await,
        "calls_per_client",
    );

    // Another client is served while all six waits still run.
    let honest = "198.51.100.2";
    let other = session_of(url, honest).await;
    let echoed = call(&other, honest, "echo", json!({"text": "hi"})).await;
    assert_eq!(echoed.status, 200, "{}", echoed.body);
    for stream in &mut running {
        let next = stream.next(Duration::from_millis(50)).await;
        assert!(
            !matches!(next, Ok(Some(ref e)) if e.json().is_some_and(|m| m.get("result").is_some())),
            "a wait finished before the honest echo was served: {next:?}"
        );
    }

    // Leaving does not cancel a 2025 call: its slots stay taken until it ends.
    drop(running);
    assert_refused(
        &call(&s1, noisy, "echo", json!({"text": "x"})).await,
        "calls_per_session",
    );
    // Once the waits are over, the client may call again.
    let until = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let r = call(&s1, noisy, "echo", json!({"text": "again"})).await;
        if r.status == 200 {
            break;
        }
        assert_refused(&r, "calls_per_session");
        assert!(tokio::time::Instant::now() < until, "slots never came back");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_over_its_request_rate_gets_429_and_others_do_not() {
    let c = cluster(&["--rate-limit-per-second", "1", "--rate-limit-burst", "5"]).await;
    let url = &c.gateway_urls()[0];
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {
        "_meta": harness::mcp::modern_meta()}});
    let headers = |client: &'static str| {
        [
            ("x-forwarded-for", client),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "server/discover"),
        ]
    };
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(post(url, &headers("198.51.100.1"), &ping).await.unwrap());
    }
    let ok = statuses.iter().filter(|r| r.status == 200).count();
    assert!(
        (5..=6).contains(&ok),
        "the burst of 5 (plus at most one refill): {:?}",
        statuses
            .iter()
            .map(|r| (r.status, &r.body))
            .collect::<Vec<_>>()
    );
    assert_refused(statuses.last().unwrap(), "request_rate");
    // Someone else is not affected.
    let r = post(url, &headers("198.51.100.2"), &ping).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // Without a trusted proxy in front, X-Forwarded-For is ignored: the header cannot be
    // used to escape a quota.
    let c = demo_cluster(
        1,
        &["--rate-limit-per-second", "1", "--rate-limit-burst", "2"],
    )
    .await;
    let url = &c.gateway_urls()[0];
    let mut refused = 0;
    for i in 0..6 {
        let client = format!("203.0.113.{i}");
        let r = post(
            url,
            &[
                ("x-forwarded-for", &client),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "server/discover"),
            ],
            &ping,
        )
        .await
        .unwrap();
        refused += usize::from(r.status == 429);
    }
    assert!(refused >= 3, "forged X-Forwarded-For escaped the quota");
}

#[tokio::test(flavor = "multi_thread")]
async fn new_sessions_per_minute_are_capped_per_client() {
    let c = cluster(&["--sessions-per-minute", "3"]).await;
    let url = &c.gateway_urls()[0];
    for _ in 0..3 {
        session_of(url, "198.51.100.1").await;
    }
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "mcpbus-tests", "version": "0"}}});
    let r = post(url, &[("x-forwarded-for", "198.51.100.1")], &init)
        .await
        .unwrap();
    assert_refused(&r, "sessions_per_minute");
    assert!(r.header("mcp-session-id").is_none());
    session_of(url, "198.51.100.2").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_streams_are_capped_per_client() {
    // Listen requests from loopback without X-Forwarded-For: the client is the address.
    let c = demo_cluster(1, &["--max-listen-per-client", "2"]).await;
    let url = &c.gateway_urls()[0];
    let first = listen(url, 1, json!({"toolsListChanged": true}))
        .await
        .unwrap();
    let _second = listen(url, 2, json!({"toolsListChanged": true}))
        .await
        .unwrap();
    let third = listen(url, 3, json!({"toolsListChanged": true})).await;
    let refused = third.err().expect("a third stream is refused").to_string();
    assert!(
        refused.contains("429") && refused.contains("listen_streams_per_client"),
        "{refused}"
    );
    // Closing one gives its slot back.
    drop(first);
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        if listen(url, 4, json!({"toolsListChanged": true}))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_tasks_per_minute_are_capped_per_client() {
    let mut c = Cluster::start(1, &["--tasks-per-minute", "2"])
        .await
        .unwrap();
    c.add_worker(&["conformance"]).unwrap();
    c.wait_for_tools(&harness::CONFORMANCE_TOOLS, WAIT)
        .await
        .unwrap();
    let url = &c.gateway_urls()[0];
    let takes_tasks = json!({"io.modelcontextprotocol/clientCapabilities": {
        "elicitation": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}}});
    let start = || {
        harness::mcp::stateless(
            url,
            "tools/call",
            json!({"name": "confirm_delete", "arguments": {"filename": "a.txt"}, "_meta": takes_tasks}),
        )
    };
    for _ in 0..2 {
        let r = start().await.unwrap();
        assert_eq!(
            r.response().unwrap()["result"]["resultType"],
            "task",
            "{}",
            r.body
        );
    }
    assert_refused(&start().await.unwrap(), "tasks_per_minute");
}
