//! The gateways' session cache (ADR 0025): a request on a known session reads no KV, yet a
//! session ended or changed through another gateway, or by the operator, is never served as
//! it was, and a watch that was interrupted by a NATS restart trusts nothing it held.
//!
//! The gateways here re-read a cached record only after an hour
//! (`--session-cache-revalidate-ms`), so only the watch, the session signals and the
//! connection checks can make them see a change: a cache that missed one would answer 200.

use std::time::Duration;

use harness::mcp::Session;
use harness::sse::SseStream;
use harness::{ctl, demo_cluster, texts, Cluster, Gateway, DEMO_TOOLS};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
const NO_REVALIDATION: [&str; 2] = ["--session-cache-revalidate-ms", "3600000"];

async fn hits(gateway: &Gateway) -> f64 {
    gateway
        .metric("mcpbus_session_cache_total{result=\"hit\"}")
        .await
        .unwrap_or(0.0)
}

/// Uses `session` on `gateway` until its record is served from the cache there.
async fn cached_on(session: &Session, gateway: &Gateway) {
    let before = hits(gateway).await;
    for _ in 0..3 {
        let r = session.request("tools/list", json!({})).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert!(
        hits(gateway).await >= before + 2.0,
        "the session is served from {}'s cache",
        gateway.base_url()
    );
}

async fn two_gateways() -> (Cluster, Vec<String>) {
    let cluster = demo_cluster(2, &NO_REVALIDATION).await;
    let urls = cluster.gateway_urls();
    (cluster, urls)
}

#[tokio::test(flavor = "multi_thread")]
async fn known_sessions_are_served_without_reading_kv() {
    let (cluster, urls) = two_gateways().await;
    let s = Session::open(&urls[1], "2025-11-25").await.unwrap();
    let gw = &cluster.gateways[1];
    let before = hits(gw).await;
    for i in 0..20 {
        let echo = s
            .call("echo", json!({"text": format!("n{i}")}))
            .await
            .unwrap();
        assert_eq!(texts(&echo["result"]), [format!("n{i}")]);
    }
    // At most the first request of the twenty read KV.
    assert!(hits(gw).await >= before + 19.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_deleted_on_one_gateway_is_refused_on_another_that_cached_it() {
    let (cluster, urls) = two_gateways().await;
    let on_a = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let on_b = on_a.via(&urls[1]);
    cached_on(&on_b, &cluster.gateways[1]).await;
    assert_eq!(on_a.delete().await.unwrap().status, 200);
    let r = on_b.request("tools/list", json!({})).await.unwrap();
    assert_eq!(r.status, 404, "B served a deleted session: {}", r.body);
    let r = on_b
        .request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_the_operator_purged_is_refused_on_a_gateway_that_cached_it() {
    // The purge removes the record from the bucket's stream: no KV delete for the watch to
    // see. The session's Ended signal is what reaches the cache.
    let (cluster, urls) = two_gateways().await;
    let s = Session::open(&urls[0], "2025-11-25").await.unwrap();
    cached_on(&s, &cluster.gateways[0]).await;
    let purged = ctl::run(&cluster.nats.operator_url(), &["purge-session", &s.id]).await;
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    let r = s.request("tools/list", json!({})).await.unwrap();
    assert_eq!(r.status, 404, "served a purged session: {}", r.body);
}

/// A session's standalone stream, past its priming event.
async fn standalone(session: &Session) -> SseStream {
    let mut stream = session.get_stream(None).await.unwrap();
    let priming = stream.next(WAIT).await.unwrap().unwrap();
    assert!(priming.id.as_deref().unwrap().starts_with("g:"));
    stream
}

fn announce(cluster: &Cluster, level: &str, text: &str) {
    let out = std::process::Command::new(harness::bin("mcpbusctl"))
        .args([
            "announce",
            "--nats",
            &cluster.nats.operator_url(),
            level,
            text,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_level_set_on_one_gateway_is_seen_by_another_that_cached_the_session() {
    let (cluster, urls) = two_gateways().await;
    let on_a = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let on_b = on_a.via(&urls[1]);
    cached_on(&on_b, &cluster.gateways[1]).await;
    let set = on_a
        .request("logging/setLevel", json!({"level": "error"}))
        .await
        .unwrap();
    assert!(set.response().unwrap()["result"].is_object());
    // The stream opened on B starts from the record B serves: a stale one (no level) would
    // show the warning.
    let mut stream = standalone(&on_b).await;
    announce(&cluster, "warning", "below the level");
    announce(&cluster, "error", "at the level");
    let first = loop {
        let event = stream
            .next(WAIT)
            .await
            .unwrap()
            .expect("the stream stays open");
        let Some(msg) = event.json() else { continue };
        if msg["method"] == "notifications/message" {
            break msg["params"]["data"].clone();
        }
    };
    assert_eq!(first, "at the level", "B used a stale log level");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nats_restart_drops_everything_the_cache_held() {
    let mut cluster = demo_cluster(1, &NO_REVALIDATION).await;
    let url = cluster.gateway_urls()[0].clone();
    let s = Session::open(&url, "2025-11-25").await.unwrap();
    cached_on(&s, &cluster.gateways[0]).await;
    // Remove the record behind the watch's back: a purge of the bucket's stream leaves no
    // KV delete, and sends no signal.
    let js = async_nats::jetstream::new(cluster.nats.client().await);
    let bucket = bus_schema::topology::SESSIONS_KV.bucket;
    js.get_stream(format!("KV_{bucket}"))
        .await
        .unwrap()
        .purge()
        .filter(format!("$KV.{bucket}.{}", s.id))
        .await
        .unwrap();
    let r = s.request("tools/list", json!({})).await.unwrap();
    assert_eq!(
        r.status, 200,
        "a change the watch cannot see is served from the cache until it is renewed"
    );
    cluster
        .nats
        .crash_and_restart(Duration::from_millis(0))
        .unwrap();
    harness::wait_ready(&cluster.gateways[0].base_url(), WAIT)
        .await
        .unwrap();
    cluster.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    let r = s.request("tools/list", json!({})).await.unwrap();
    assert_eq!(
        r.status, 404,
        "served a record held from before the restart: {}",
        r.body
    );
}
