//! Cancellation across nodes: `notifications/cancelled` posted to any gateway stops the work
//! on whichever worker runs it, and takes a call still waiting in the queue back out; on the
//! 2026-07-28 lane, closing the response stream cancels the request.

use std::time::Duration;

use harness::mcp::{Session, ACCEPT_BOTH, MODERN};
use harness::{demo_cluster, Cluster, DEMO_TOOLS};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// How many calls wait in the calls work queue (queued or running, not yet acknowledged).
async fn calls_in_queue(c: &Cluster) -> u64 {
    let js = async_nats::jetstream::new(c.nats.client().await);
    let mut stream = js.get_stream("MCPBUS_CALLS").await.unwrap();
    stream.info().await.unwrap().state.messages
}

fn worker_log(c: &Cluster) -> String {
    std::fs::read_to_string(c.dir.path().join("worker-0.log")).unwrap_or_default()
}

/// Waits until the worker's log mentions `n` cancelled calls.
async fn wait_for_cancellations(c: &Cluster, n: usize) {
    let until = tokio::time::Instant::now() + WAIT;
    while worker_log(c).matches("call cancelled").count() < n {
        assert!(
            tokio::time::Instant::now() < until,
            "the worker never saw {n} cancellation(s):\n{}",
            worker_log(c)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancellation_posted_to_another_node_stops_running_and_queued_calls() {
    // One call at a time, so that a second one waits in the queue.
    let mut c = Cluster::start(2, &[]).await.unwrap();
    c.add_worker(&["--max-in-flight", "1", "demo"]).unwrap();
    c.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    let urls = c.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let slow = json!({"name": "slow_count", "arguments": {"n": 100, "interval_ms": 100},
        "_meta": {"progressToken": "p"}});

    // Request 42 runs; request 43 waits behind it.
    let mut running = session
        .stream_request("tools/call", slow.clone())
        .await
        .unwrap();
    loop {
        let e = running.next(WAIT).await.unwrap().expect("stream open");
        if e.json()
            .is_some_and(|m| m["method"] == "notifications/progress")
        {
            break;
        }
    }
    let msg = json!({"jsonrpc": "2.0", "id": 43, "method": "tools/call", "params": slow});
    let mut queued = harness::sse::SseStream::open(
        reqwest::Client::new()
            .post(&urls[0])
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .header("mcp-session-id", &session.id)
            .header("mcp-protocol-version", "2025-11-25")
            .body(msg.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(calls_in_queue(&c).await, 2);

    // Cancel the queued one through the other node: it leaves the queue without running.
    let other = session.via(&urls[1]);
    let cancel = |id: i64| {
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": "test"}})
    };
    assert_eq!(other.post(&cancel(43)).await.unwrap().status, 202);
    let rest = queued.collect(WAIT).await.unwrap();
    assert!(
        rest.iter()
            .all(|e| e.json().is_none_or(|m| m.get("result").is_none())),
        "a cancelled request gets no response: {rest:?}"
    );
    assert_eq!(
        calls_in_queue(&c).await,
        1,
        "the queued call was taken back"
    );

    // Cancel the running one: the worker stops it and its stream ends without a response.
    assert_eq!(other.post(&cancel(42)).await.unwrap().status, 202);
    let rest = running.collect(WAIT).await.unwrap();
    assert!(rest
        .iter()
        .all(|e| e.json().is_none_or(|m| m.get("result").is_none())));
    wait_for_cancellations(&c, 1).await;
    // Only the running call was ever cancelled on the worker: the queued one never ran.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(worker_log(&c).matches("call cancelled").count(), 1);
    assert_eq!(calls_in_queue(&c).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_a_stateless_response_stream_cancels_the_call() {
    let c = demo_cluster(1, &[]).await;
    let url = &c.gateway_urls()[0];
    let msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "slow_count", "arguments": {"n": 100, "interval_ms": 100},
        "_meta": harness::mcp::modern_meta()}});
    let mut stream = harness::sse::SseStream::open(
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "slow_count")
            .body(msg.to_string()),
    )
    .await
    .unwrap();
    // Something arrives (the call is running), then the client hangs up.
    let _ = stream.next(Duration::from_secs(1)).await;
    drop(stream);
    wait_for_cancellations(&c, 1).await;
    assert_eq!(calls_in_queue(&c).await, 0);
}
