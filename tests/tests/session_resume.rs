//! Resumable streams (session lane): every event of a request's stream is stored, so a
//! client that loses its connection, or whose gateway dies, resumes with `Last-Event-ID` on
//! any node and gets exactly the events it missed, then the rest live.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::mcp::Session;
use harness::sse::{Seen, SseEvent};
use harness::{demo_cluster, Cluster, DEMO_TOOLS};
use serde_json::{json, Value};

const STEPS: u32 = 8;
const WAIT: Duration = Duration::from_secs(20);

fn slow_count(n: u32, interval_ms: u64) -> Value {
    json!({"name": "slow_count", "arguments": {"n": n, "interval_ms": interval_ms}, "_meta": {"progressToken": "p1"}})
}

/// Every step exactly once, with the request's token, and one response with the count.
fn assert_complete(seen: &Seen, trial: usize) {
    let expected: BTreeMap<u64, usize> = (1..=u64::from(STEPS)).map(|i| (i, 1)).collect();
    assert_eq!(
        seen.progress, expected,
        "trial {trial}: progress lost or duplicated"
    );
    assert_eq!(seen.tokens, ["\"p1\"".to_owned()].into(), "trial {trial}");
    assert_eq!(
        seen.responses.len(),
        1,
        "trial {trial}: {:?}",
        seen.responses
    );
    let r = &seen.responses[0];
    assert_eq!(
        r["id"], 42,
        "the resumed response answers the original request id"
    );
    assert_eq!(
        r["result"]["structuredContent"]["count"], STEPS,
        "trial {trial}: {r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_survive_the_gateway_that_held_them() {
    let mut cluster = Cluster::start(1, &[]).await.unwrap();
    cluster.add_worker(&["demo"]).unwrap();
    cluster.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    let survivor = cluster.gateway_urls()[0].clone();
    // Six trials in CI; set MCPBUS_RESUME_TRIALS for a longer soak (the closing notes say how
    // many were run).
    let trials: usize = std::env::var("MCPBUS_RESUME_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    for trial in 0..trials {
        cluster.add_gateway(&[]).await.unwrap();
        let doomed = cluster.gateways.len() - 1;
        let session = Session::open(&cluster.gateway_urls()[doomed], "2025-11-25")
            .await
            .unwrap();
        let mut stream = session
            .stream_request("tools/call", slow_count(STEPS, 150))
            .await
            .unwrap();
        let mut seen = Seen::default();
        let priming = stream.next(WAIT).await.unwrap().unwrap();
        assert!(
            priming.id.is_some() && priming.data.is_empty(),
            "priming event: {priming:?}"
        );
        seen.take(&priming);
        // Kill the node after a varying number of steps, including before any progress.
        seen.read_until_progress(&mut stream, trial % 4, WAIT).await;
        cluster.gateways[doomed].proc.kill9();
        drop(stream);
        let resumed = session.via(&survivor);
        let mut stream = resumed.get_stream(seen.last_id.as_deref()).await.unwrap();
        seen.read_to_end(&mut stream, WAIT).await;
        assert_complete(&seen, trial);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_replays_exactly_the_missed_events() {
    let cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut stream = session
        .stream_request("tools/call", slow_count(STEPS, 20))
        .await
        .unwrap();
    let all = stream.collect(WAIT).await.unwrap();
    let ids: Vec<&str> = all.iter().filter_map(|e| e.id.as_deref()).collect();
    assert_eq!(
        ids.len(),
        STEPS as usize + 2,
        "priming + steps + response, each with an id"
    );
    // Resume from every position, on the other node: the tail after it, and nothing else.
    for (i, id) in ids.iter().enumerate() {
        let mut resumed = session.via(&urls[1]).get_stream(Some(id)).await.unwrap();
        let tail = resumed.collect(WAIT).await.unwrap();
        let tail_ids: Vec<&str> = tail.iter().filter_map(|e| e.id.as_deref()).collect();
        let expected: Vec<&str> = ids[i + 1..].to_vec();
        // A resumed stream begins with its own priming event at the cursor.
        assert_eq!(tail_ids[0], *id);
        assert_eq!(&tail_ids[1..], &expected[..], "resume after {id}");
        let data: Vec<&str> = tail[1..].iter().map(|e| e.data.as_str()).collect();
        let original: Vec<&str> = all[i + 1..].iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, original, "replayed events are the originals");
    }
}

/// An event id carries the highest progress the client was sent (ADR 0016): a stream resumed
/// on another node sends no progress at or below it, as after a rerun that counts from 1 again.
#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_stream_sends_no_progress_below_what_the_client_saw() {
    let cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut stream = session
        .stream_request("tools/call", slow_count(STEPS, 20))
        .await
        .unwrap();
    let all = stream.collect(WAIT).await.unwrap();
    let priming = all[0].id.clone().expect("the priming event has an id");
    assert_eq!(priming.split(':').count(), 3, "no progress yet: {priming}");
    // As if the client had seen progress 5 before this cursor.
    let mut seen = Seen::default();
    let mut resumed = session
        .via(&urls[1])
        .get_stream(Some(&format!("{priming}:5")))
        .await
        .unwrap();
    seen.read_to_end(&mut resumed, WAIT).await;
    let expected: BTreeMap<u64, usize> = (6..=u64::from(STEPS)).map(|i| (i, 1)).collect();
    assert_eq!(seen.progress, expected);
    assert_eq!(seen.responses.len(), 1, "{:?}", seen.responses);
    assert!(
        seen.last_id
            .as_deref()
            .is_some_and(|id| id.ends_with(&format!(":{STEPS}"))),
        "the last id carries the highest progress: {:?}",
        seen.last_id
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_never_crosses_streams_or_sessions() {
    let cluster = demo_cluster(1, &[]).await;
    let url = &cluster.gateway_urls()[0];
    let session = Session::open(url, "2025-11-25").await.unwrap();
    let a = session
        .stream_request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "A"}}),
        )
        .await
        .unwrap()
        .collect(WAIT)
        .await
        .unwrap();
    let b = session
        .stream_request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "B"}}),
        )
        .await
        .unwrap()
        .collect(WAIT)
        .await
        .unwrap();
    let a_priming = a[0].id.clone().unwrap();
    let b_priming = b[0].id.clone().unwrap();
    let replay_a = session
        .get_stream(Some(&a_priming))
        .await
        .unwrap()
        .collect(WAIT)
        .await
        .unwrap();
    let texts: Vec<String> = replay_a
        .iter()
        .filter_map(|e| e.json())
        .map(|m| m["result"]["content"][0]["text"].to_string())
        .collect();
    assert_eq!(texts, ["\"A\""], "stream A's replay holds only A");
    let replay_b = session
        .get_stream(Some(&b_priming))
        .await
        .unwrap()
        .collect(WAIT)
        .await
        .unwrap();
    assert!(replay_b.iter().all(|e| !e.data.contains("\"A\"")));
    // Another session presenting this session's event id gets nothing of it.
    let other = Session::open(url, "2025-11-25").await.unwrap();
    let r = other.get_raw(&a_priming).await.unwrap();
    assert_eq!(r.status, 410, "{}", r.body);
    assert!(!r.body.contains("\"A\""));
    // An id we never issued is a bad request.
    assert_eq!(
        session.get_raw("not-an-event-id").await.unwrap().status,
        400
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_past_retention_gets_410_not_a_silent_gap() {
    let cluster = demo_cluster(1, &["--event-retention-secs", "1"]).await;
    let session = Session::open(&cluster.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    let events = session
        .stream_request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "old"}}),
        )
        .await
        .unwrap()
        .collect(WAIT)
        .await
        .unwrap();
    let priming = events[0].id.clone().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = session.get_raw(&priming).await.unwrap();
    assert_eq!(r.status, 410, "{}", r.body);
    let error = &r.response().unwrap()["error"];
    assert_eq!(error["data"]["reason"], "events_expired");
}

#[tokio::test(flavor = "multi_thread")]
async fn ending_a_session_removes_its_events() {
    let cluster = demo_cluster(1, &[]).await;
    let session = Session::open(&cluster.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    session
        .stream_request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        )
        .await
        .unwrap()
        .collect(WAIT)
        .await
        .unwrap();
    let nats = cluster.nats.client().await;
    let js = async_nats::jetstream::new(nats);
    let stream = js
        .get_stream(bus_schema::topology::EVENTS_STREAM)
        .await
        .unwrap();
    let subject = bus_schema::subjects::session_events_all(&session.id);
    assert!(
        stream
            .direct_get_next_for_subject(subject.clone(), None)
            .await
            .is_ok(),
        "events stored"
    );
    assert_eq!(session.delete().await.unwrap().status, 200);
    assert!(
        stream
            .direct_get_next_for_subject(subject, None)
            .await
            .is_err(),
        "events purged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_streams_get_keep_alives() {
    let cluster = demo_cluster(1, &["--sse-keep-alive-secs", "1"]).await;
    let session = Session::open(&cluster.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    let mut stream = session.get_stream(None).await.unwrap();
    let priming = stream.next(WAIT).await.unwrap().unwrap();
    assert!(priming.id.as_deref().unwrap().starts_with("g:"));
    // Nothing else happens; within 3.5 s at least two keep-alive comments arrive.
    let _ = stream.next(Duration::from_millis(3500)).await;
    assert!(
        stream.comments_seen() >= 2,
        "saw {} keep-alives",
        stream.comments_seen()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draining_gateway_hands_its_streams_to_another_node() {
    let mut cluster = Cluster::start(2, &[]).await.unwrap();
    cluster.add_worker(&["demo"]).unwrap();
    cluster.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut stream = session
        .stream_request("tools/call", slow_count(STEPS, 200))
        .await
        .unwrap();
    let mut standalone = session.get_stream(None).await.unwrap();
    standalone.next(WAIT).await.unwrap();
    let mut listen = harness::mcp::listen(&urls[0], 9, json!({"toolsListChanged": true}))
        .await
        .unwrap();
    listen.next(WAIT).await.unwrap();
    let mut seen = Seen::default();
    seen.read_until_progress(&mut stream, 2, WAIT).await;
    cluster.gateways[0].proc.terminate();
    // Both streams end with a retry hint instead of a silent drop.
    let rest = stream.collect(WAIT).await.unwrap();
    assert!(
        rest.last().and_then(|e| e.retry).is_some(),
        "request stream: {rest:?}"
    );
    seen.take_all(&rest);
    let tail = standalone.collect(WAIT).await.unwrap();
    assert!(
        tail.last().and_then(|e| e.retry).is_some(),
        "standalone stream: {tail:?}"
    );
    let mut resumed = session
        .via(&urls[1])
        .get_stream(seen.last_id.as_deref())
        .await
        .unwrap();
    seen.read_to_end(&mut resumed, WAIT).await;
    assert_complete(&seen, 0);
}

/// The ids and data of a stream's events after its priming event, as a client sees them.
fn ids_and_data(events: &[SseEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e.id.clone().unwrap_or_default(), e.data.clone()))
        .collect()
}

/// A resume after many events reads them in bulk (ADR 0024): more than one batch of them,
/// interleaved in the store with another stream's events, some larger than the rest. Every
/// missed event comes exactly once, in order, with its original id and data, from the start,
/// the middle and near the end, and above the progress the client says it saw (ADR 0016).
#[tokio::test(flavor = "multi_thread")]
async fn a_resume_after_many_events_delivers_each_once_in_order() {
    const LONG: u32 = 1_500;
    let cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let long = json!({"name": "slow_count", "arguments": {"n": LONG, "interval_ms": 0, "pad": 2_000},
        "_meta": {"progressToken": "p1"}});
    let (mut a, mut b) = (
        session.stream_request("tools/call", long).await.unwrap(),
        session
            .stream_request("tools/call", slow_count(300, 0))
            .await
            .unwrap(),
    );
    let (a, b) = tokio::join!(a.collect(WAIT), b.collect(WAIT));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.len(),
        LONG as usize + 2,
        "priming, every step, the response"
    );
    let elsewhere = session.via(&urls[1]);
    for (stream, from) in [(&a, 0), (&a, 700), (&a, a.len() - 12), (&b, 0)] {
        let cursor = stream[from].id.clone().expect("every event has an id");
        let resumed = elsewhere
            .get_stream(Some(&cursor))
            .await
            .unwrap()
            .collect(WAIT)
            .await
            .unwrap();
        assert_eq!(resumed[0].id.as_deref(), Some(cursor.as_str()), "priming");
        assert!(
            ids_and_data(&resumed[1..]) == ids_and_data(&stream[from + 1..]),
            "resume after event {from}: {} events came, {} expected",
            resumed.len() - 1,
            stream.len() - from - 1
        );
    }
    // As if the client had seen progress 1,000 before the priming cursor.
    let priming = a[0].id.clone().unwrap();
    let mut seen = Seen::default();
    let mut resumed = elsewhere
        .get_stream(Some(&format!("{priming}:1000")))
        .await
        .unwrap();
    seen.read_to_end(&mut resumed, WAIT).await;
    let expected: BTreeMap<u64, usize> = (1_001..=u64::from(LONG)).map(|i| (i, 1)).collect();
    assert!(seen.progress == expected, "progress at or below 1,000 came");
    assert_eq!(seen.responses.len(), 1);
    assert_eq!(
        seen.responses[0]["result"]["structuredContent"]["count"],
        LONG
    );
    // The bus let the gateway read in bulk (its permissions allow the replay consumer).
    for gateway in &cluster.gateways {
        assert!(!gateway.proc.log_text().contains("replay consumer"));
    }
}
