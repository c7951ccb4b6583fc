//! What happens to calls when a worker dies mid-call (kill -9), and when a pool grows: an
//! idempotent call runs again on another replica and its client gets the answer; any other
//! call fails with `worker_lost` rather than running twice or hanging; replicas added to a
//! pool take a share of the calls at once. Progress never goes down across the rerun.

use std::collections::HashMap;
use std::time::Duration;

use harness::mcp::Session;
use harness::{Cluster, DEMO_TOOLS};
use serde_json::json;

/// JetStream redelivers an unacknowledged call after the pool's ack wait (30 s, PROTOCOL.md
/// section 3); the answer must come within that plus slack.
const AFTER_REDELIVERY: Duration = Duration::from_secs(60);

/// The stream's final message, and the progress values it carried before it.
async fn final_message_after_progress(
    stream: &mut harness::sse::SseStream,
) -> (serde_json::Value, Vec<f64>) {
    let mut progress = Vec::new();
    loop {
        let e = stream
            .next(AFTER_REDELIVERY)
            .await
            .unwrap()
            .expect("the stream stays open until the answer");
        let Some(m) = e.json() else { continue };
        if m.get("result").is_some() || m.get("error").is_some() {
            return (m, progress);
        }
        if m["method"] == "notifications/progress" {
            progress.push(m["params"]["progress"].as_f64().unwrap());
        }
    }
}

async fn final_message(stream: &mut harness::sse::SseStream) -> serde_json::Value {
    loop {
        let e = stream
            .next(AFTER_REDELIVERY)
            .await
            .unwrap()
            .expect("the stream stays open until the answer");
        if let Some(m) = e
            .json()
            .filter(|m| m.get("result").is_some() || m.get("error").is_some())
        {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_call_reruns_idempotent_calls_and_fails_the_others() {
    let mut c = Cluster::start(2, &[]).await.unwrap();
    let first = c.add_worker(&["demo", "--instance", "first"]).unwrap();
    c.wait_for_tools(&DEMO_TOOLS, Duration::from_secs(20))
        .await
        .unwrap();
    let urls = c.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut idempotent = session
        .stream_request(
            "tools/call",
            json!({"name": "wait", "arguments": {"ms": 4000, "steps": 20},
                   "_meta": {"progressToken": "w"}}),
        )
        .await
        .unwrap();
    // A second request of the same session (its own JSON-RPC id), through the other node.
    let msg = json!({"jsonrpc": "2.0", "id": 43, "method": "tools/call", "params": {
        "name": "slow_count", "arguments": {"n": 40, "interval_ms": 100}}});
    let mut other = harness::sse::SseStream::open(
        reqwest::Client::new()
            .post(&urls[1])
            .header("content-type", "application/json")
            .header("accept", harness::mcp::ACCEPT_BOTH)
            .header("mcp-session-id", &session.id)
            .header("mcp-protocol-version", "2025-11-25")
            .body(msg.to_string()),
    )
    .await
    .unwrap();
    // Both run on `first`; a second replica joins; `first` dies holding both calls.
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.add_worker(&["demo", "--instance", "second"]).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.workers[first].kill9();

    let (done, progress) = final_message_after_progress(&mut idempotent).await;
    // The crashed attempt sent about ten steps, the rerun counted from 1 again: the client
    // sees only steps above the highest it already had (MCP progress only increases).
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]),
        "progress went down: {progress:?}"
    );
    assert!(progress.len() >= 3, "{progress:?}");
    assert_eq!(progress.last(), Some(&20.0), "{progress:?}");
    assert_eq!(
        done["result"]["structuredContent"],
        json!({"waited_ms": 4000, "instance": "second"}),
        "the idempotent call ran again on the survivor: {done}"
    );
    let lost = final_message(&mut other).await;
    assert_eq!(lost["error"]["code"], -32603, "{lost}");
    assert_eq!(lost["error"]["data"]["reason"], "worker_lost", "{lost}");
    assert!(
        lost["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not idempotent"),
        "{lost}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_grown_from_one_replica_to_three_spreads_the_calls() {
    // One session with dozens of calls at once: more than its default quota.
    let mut c = Cluster::start(1, &harness::LOAD_FROM_LOOPBACK)
        .await
        .unwrap();
    c.add_worker(&["demo", "--instance", "r1"]).unwrap();
    c.wait_for_tools(&DEMO_TOOLS, Duration::from_secs(20))
        .await
        .unwrap();
    let session = Session::open(&c.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    let serve = |n: usize| {
        let session = session.via(&session.url);
        async move {
            let mut tasks = Vec::new();
            for _ in 0..n {
                let s = session.via(&session.url);
                // Long enough that one replica cannot take every call before the others pull.
                tasks.push(tokio::spawn(async move {
                    s.call("wait", json!({"ms": 200})).await.unwrap()
                }));
            }
            let mut served: HashMap<String, usize> = HashMap::new();
            for t in tasks {
                let r = t.await.unwrap();
                let who = r["result"]["structuredContent"]["instance"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                *served.entry(who).or_default() += 1;
            }
            served
        }
    };
    assert_eq!(serve(20).await, HashMap::from([("r1".to_owned(), 20)]));
    c.add_worker(&["demo", "--instance", "r2", "--max-in-flight", "16"])
        .unwrap();
    c.add_worker(&["demo", "--instance", "r3", "--max-in-flight", "16"])
        .unwrap();
    // New replicas pull from the pool's queue as soon as they start; give them a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let served = serve(96).await;
    assert_eq!(served.values().sum::<usize>(), 96);
    for r in ["r1", "r2", "r3"] {
        assert!(
            served.get(r).copied().unwrap_or(0) >= 10,
            "{r} served too few: {served:?}"
        );
    }
}
