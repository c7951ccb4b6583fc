//! A session's standalone streams are governed cluster-wide (issue 12, findings 4, 7, 8):
//! one standalone stream per session (a new GET replaces the old one, on any node),
//! `DELETE` ends the session's streams on every node, and a `resources/updated` costs no
//! read of the session record. Bounded: a few dozen requests on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bus_schema::messages::BroadcastKind;
use futures::StreamExt;
use harness::mcp::Session;
use harness::sse::SseStream;
use harness::Cluster;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

/// A standalone stream past its priming event.
async fn open(session: &Session) -> SseStream {
    let mut stream = session.get_stream(None).await.unwrap();
    let priming = stream.next(WAIT).await.unwrap().unwrap();
    assert!(priming.id.unwrap().starts_with("g:"));
    stream
}

/// Whether the server closed `stream` within [`WAIT`] (events before the close are skipped).
async fn closed(stream: &mut SseStream) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match stream.next(left).await {
            Ok(None) => return true,
            Ok(Some(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_standalone_stream_replaces_the_old_one_on_any_node() {
    let cluster = Cluster::start(2, &[]).await.unwrap();
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut previous = open(&session).await;
    for i in 1..=20 {
        // Alternate nodes: the replacement is cluster-wide.
        let next = open(&session.via(&urls[i % 2])).await;
        assert!(closed(&mut previous).await, "stream {} still open", i - 1);
        previous = next;
    }
    // The survivor still carries notifications.
    cluster
        .nats
        .publish_broadcast(BroadcastKind::ToolsListChanged)
        .await;
    let e = previous.next(WAIT).await.unwrap().unwrap();
    assert!(e.data.contains("notifications/tools/list_changed"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_session_ends_its_streams_on_every_node() {
    let cluster = Cluster::start(2, &[]).await.unwrap();
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut stream = open(&session.via(&urls[1])).await;
    let r = session.delete().await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        closed(&mut stream).await,
        "the ended session's stream is closed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_updates_do_not_read_the_session_record_each_time() {
    let cluster = Cluster::start(1, &[]).await.unwrap();
    let url = &cluster.gateway_urls()[0];
    let session = Session::open(url, "2025-11-25").await.unwrap();
    let r = session
        .request("resources/subscribe", json!({"uri": "file:///a"}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let mut stream = open(&session).await;

    // Every read of a session record is a direct get on the sessions bucket's stream.
    let nats = cluster.nats.client().await;
    let mut gets = nats
        .subscribe("$JS.API.DIRECT.GET.KV_mcpbus-sessions.>")
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let reads = Arc::new(AtomicUsize::new(0));
    let counter = reads.clone();
    tokio::spawn(async move {
        while gets.next().await.is_some() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });

    let updated = || BroadcastKind::ResourceUpdated {
        uri: "file:///a".into(),
    };
    for _ in 0..20 {
        cluster.nats.publish_broadcast(updated()).await;
    }
    for i in 0..20 {
        let e = stream.next(WAIT).await.unwrap().unwrap();
        assert!(e.data.contains("file:///a"), "update {i}: {e:?}");
    }
    assert_eq!(
        reads.load(Ordering::Relaxed),
        0,
        "no record read per update"
    );

    // A subscription made while the stream is open counts: it is read once, then cached.
    let r = session
        .request("resources/subscribe", json!({"uri": "file:///b"}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // The subscribe request's own reads (its session lookup) may still be on their way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = reads.load(Ordering::Relaxed);
    for _ in 0..5 {
        cluster
            .nats
            .publish_broadcast(BroadcastKind::ResourceUpdated {
                uri: "file:///b".into(),
            })
            .await;
    }
    for i in 0..5 {
        let e = stream.next(WAIT).await.unwrap().unwrap();
        assert!(e.data.contains("file:///b"), "update {i}: {e:?}");
    }
    let after = reads.load(Ordering::Relaxed) - before;
    assert!(after <= 1, "{after} record reads for five updates");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_holds_at_most_its_share_of_long_lived_streams() {
    let cluster = Cluster::start(1, &["--max-open-streams", "3"])
        .await
        .unwrap();
    let url = &cluster.gateway_urls()[0];
    let mut held = Vec::new();
    for i in 0..3 {
        let mut s = harness::mcp::listen(url, i, json!({"toolsListChanged": true}))
            .await
            .unwrap();
        s.next(WAIT).await.unwrap().expect("acknowledged");
        held.push(s);
    }
    // A fourth, listen or standalone, is sent elsewhere.
    let session = Session::open(url, "2025-11-25").await.unwrap();
    for refused in [
        harness::mcp::stateless(
            url,
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .await
        .unwrap(),
        harness::mcp::send_raw(
            reqwest::Method::GET,
            url,
            &[
                ("accept", "text/event-stream"),
                ("mcp-session-id", &session.id),
            ],
        )
        .await
        .unwrap(),
    ] {
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert!(
            refused.body.contains("too_many_streams"),
            "{}",
            refused.body
        );
    }
    // Closing one frees its place.
    held.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = open(&session).await;
    cluster
        .nats
        .publish_broadcast(BroadcastKind::ToolsListChanged)
        .await;
    assert!(again.next(WAIT).await.unwrap().is_some());
}
