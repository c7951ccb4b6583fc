//! NATS going away: gateways report not-ready instead of dying, requests fail with a clear
//! error instead of hanging, and when the server comes back on its store, sessions, the
//! catalogue and calls all resume without restarting anything.

use std::time::{Duration, Instant};

use harness::mcp::{stateless, Session};
use harness::{demo_cluster, texts, DEMO_TOOLS};
use serde_json::json;

async fn readyz(base: &str) -> u16 {
    match reqwest::get(format!("{base}/readyz")).await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_rides_out_a_nats_restart() {
    let mut cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    let base = cluster.gateways[0].base_url();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let before = session
        .stream_request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "stored"}}),
        )
        .await
        .unwrap()
        .collect(Duration::from_secs(10))
        .await
        .unwrap();
    let priming = before[0].id.clone().unwrap();

    cluster.nats.kill9(0);
    let start = Instant::now();
    while readyz(&base).await != 503 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "gateway still ready without NATS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Without NATS a call fails with a clear reason instead of waiting on the bus.
    let r = stateless(
        &urls[1],
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
    )
    .await
    .unwrap()
    .response()
    .unwrap();
    assert_eq!(r["error"]["data"]["reason"], "bus_unavailable", "{r}");
    // A session-lane request fails with 503 (the session store is unreachable), no hang.
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        session.request("tools/list", json!({})),
    )
    .await
    .expect("answered, not hung")
    .unwrap();
    assert_eq!(r.status, 503, "{}", r.body);

    cluster
        .nats
        .crash_and_restart(Duration::from_millis(0))
        .unwrap();
    harness::wait_ready(&base, Duration::from_secs(30))
        .await
        .unwrap();
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(30))
        .await
        .unwrap();
    // The session was on the server's file store: it continues, on either node.
    for url in &urls {
        let r = session
            .via(url)
            .call("echo", json!({"text": "after restart"}))
            .await
            .unwrap();
        assert_eq!(texts(&r["result"]), ["after restart"], "{r}");
    }
    // Events stored before the crash are still there to resume from, on the file store.
    let replay = session
        .via(&urls[1])
        .get_stream(Some(&priming))
        .await
        .unwrap()
        .collect(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        replay.iter().any(|e| e.data.contains("stored")),
        "{replay:?}"
    );
}
