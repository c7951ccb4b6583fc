//! Server-wide messages (ADR 0023): from the operator (`mcpbusctl announce`) or a worker (the
//! demo's `announce` tool, through a gateway), stored once in the broadcast stream, delivered
//! once to every session-lane standalone stream on every gateway, filtered by each session's
//! `logging/setLevel`, and replayed to a stream that resumes past them. A worker's requests
//! are capped in size and rate, and answered only in its own pool's inbox.

use std::time::Duration;

use bus_schema::messages::{AnnounceReply, ANNOUNCEMENT_MAX_BYTES};
use bus_schema::names::PoolName;
use bus_schema::subjects;
use futures::StreamExt;
use harness::mcp::Session;
use harness::sse::SseStream;
use harness::{demo_cluster, Cluster};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// A session's standalone stream, past its priming event.
async fn standalone(session: &Session) -> SseStream {
    let mut stream = session.get_stream(None).await.unwrap();
    let priming = stream.next(WAIT).await.unwrap().unwrap();
    assert!(priming.id.as_deref().unwrap().starts_with("g:"));
    stream
}

/// The `notifications/message` params that arrive within `quiet` of each other, with their
/// event ids.
async fn messages(stream: &mut SseStream, quiet: Duration) -> Vec<(String, Value)> {
    let mut seen = vec![];
    while let Ok(Some(event)) = stream.next(quiet).await {
        let Some(msg) = event.json() else { continue };
        if msg["method"] == "notifications/message" {
            seen.push((event.id.unwrap_or_default(), msg["params"].clone()));
        }
    }
    seen
}

/// `mcpbusctl announce`, as the operator role.
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
        "mcpbusctl announce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn announcements_reach_every_gateway_once_and_respect_log_levels() {
    let cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    let chatty = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let quiet = Session::open(&urls[1], "2025-11-25").await.unwrap();
    let set = quiet
        .request("logging/setLevel", json!({"level": "error"}))
        .await
        .unwrap();
    assert!(
        set.response().unwrap()["result"].is_object(),
        "{:?}",
        set.messages()
    );
    let mut on_a = standalone(&chatty).await;
    let mut on_b = standalone(&quiet).await;

    // From the operator, and from a worker through its tool.
    announce(&cluster, "warning", "maintenance at noon");
    let called = chatty
        .call(
            "announce",
            json!({"level": "info", "text": "worker says hi"}),
        )
        .await
        .unwrap();
    assert_eq!(called["result"]["isError"], json!(false), "{called}");

    let seen = messages(&mut on_a, Duration::from_secs(3)).await;
    let params: Vec<&Value> = seen.iter().map(|(_, p)| p).collect();
    assert_eq!(
        params,
        [
            &json!({"level": "warning", "logger": "mcpbus", "data": "maintenance at noon"}),
            &json!({"level": "info", "logger": "demo/demo", "data": "worker says hi"}),
        ],
        "each announcement once, in order, with who said it"
    );
    assert!(
        messages(&mut on_b, Duration::from_secs(1)).await.is_empty(),
        "below the session's level: not delivered"
    );

    // A level change takes effect on the open stream, on the other node.
    let set = quiet
        .request("logging/setLevel", json!({"level": "debug"}))
        .await
        .unwrap();
    assert!(set.response().unwrap()["result"].is_object());
    announce(&cluster, "notice", "now you hear me");
    let heard = messages(&mut on_b, Duration::from_secs(3)).await;
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(heard[0].1["data"], "now you hear me");

    // A stream that resumes from before the first announcement gets all three again.
    let first_id = &seen[0].0;
    let before = format!("g:{}", first_id[2..].parse::<u64>().unwrap() - 1);
    let mut resumed = chatty.get_stream(Some(&before)).await.unwrap();
    let replayed = messages(&mut resumed, Duration::from_secs(3)).await;
    let data: Vec<&Value> = replayed.iter().map(|(_, p)| &p["data"]).collect();
    assert_eq!(
        data,
        [
            &json!("maintenance at noon"),
            &json!("worker says hi"),
            &json!("now you hear me")
        ]
    );
}

/// A standalone stream resuming past more announcements than it reads one by one takes them
/// in bulk (ADR 0024): each once, in order, with the ids the live stream gave them.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_resuming_past_many_announcements_gets_each_once_in_order() {
    const MANY: usize = 40;
    let cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut live = standalone(&session).await;
    for i in 0..MANY {
        announce(&cluster, "notice", &format!("note {i}"));
    }
    let seen = messages(&mut live, Duration::from_secs(3)).await;
    let expected: Vec<Value> = (0..MANY).map(|i| json!(format!("note {i}"))).collect();
    let data: Vec<&Value> = seen.iter().map(|(_, p)| &p["data"]).collect();
    assert_eq!(data, expected.iter().collect::<Vec<_>>(), "live, in order");
    let before = format!("g:{}", seen[0].0[2..].parse::<u64>().unwrap() - 1);
    let mut resumed = session
        .via(&urls[1])
        .get_stream(Some(&before))
        .await
        .unwrap();
    let replayed = messages(&mut resumed, Duration::from_secs(3)).await;
    assert_eq!(replayed, seen, "replayed: each once, in order, same ids");
    // The bus let the gateway read in bulk (its permissions allow the replay consumer).
    for gateway in &cluster.gateways {
        assert!(!gateway.proc.log_text().contains("replay consumer"));
    }
}

/// A worker asking as its pool: refused when too large, malformed or too frequent; never
/// answered in another pool's inbox.
#[tokio::test(flavor = "multi_thread")]
async fn a_workers_announcements_are_capped() {
    let cluster = demo_cluster(1, &[]).await;
    let pool = PoolName::new("demo").unwrap();
    let nats = cluster.nats.worker_client("demo").await;
    let ask = |body: Value| {
        let nats = nats.clone();
        let subject = subjects::announce(&pool);
        async move {
            let reply = nats
                .request(subject, serde_json::to_vec(&body).unwrap().into())
                .await
                .unwrap();
            serde_json::from_slice::<AnnounceReply>(&reply.payload).unwrap()
        }
    };
    let reason = |r: AnnounceReply| r.error.expect("refused").data.unwrap()["reason"].clone();

    let huge = json!({"id": "big", "level": "info", "data": "x".repeat(ANNOUNCEMENT_MAX_BYTES)});
    assert_eq!(reason(ask(huge).await), "too_large");
    assert_eq!(
        reason(ask(json!({"id": "a", "level": "loud", "data": 1})).await),
        "malformed"
    );
    // The burst is 10 a pool (the two refusals above took rate too); 12 more must meet the
    // limit, and the refusal says so.
    let mut refused = 0;
    for i in 0..12 {
        let reply = ask(json!({"id": format!("n{i}"), "level": "debug", "data": i})).await;
        if let Some(e) = reply.error {
            assert_eq!(e.data.unwrap()["reason"], "rate_limited");
            refused += 1;
        }
    }
    assert!(refused >= 2, "the rate limit never refused");

    // A request naming another pool's inbox as its reply subject gets no answer there.
    let other = subjects::worker_inbox_prefix(&PoolName::new("other").unwrap());
    let admin = cluster.nats.client().await;
    let mut spy = admin.subscribe(format!("{other}.>")).await.unwrap();
    admin.flush().await.unwrap();
    nats.publish_with_reply(
        subjects::announce(&pool),
        format!("{other}.x"),
        serde_json::to_vec(&json!({"id": "z", "level": "info", "data": 1}))
            .unwrap()
            .into(),
    )
    .await
    .unwrap();
    nats.flush().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), spy.next())
            .await
            .is_err(),
        "a gateway answered into another pool's inbox"
    );
}
