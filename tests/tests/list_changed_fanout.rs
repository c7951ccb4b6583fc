//! Cluster-wide fan-out: a catalogue change (a worker joins, changes its catalogue, leaves or
//! expires) reaches every session-lane GET stream and every stateless-lane listen stream, on
//! every gateway, exactly once; standalone streams resume the changes they missed.

use std::time::Duration;

use bus_schema::messages::BroadcastKind;
use harness::mcp::{listen, Session};
use harness::sse::SseStream;
use harness::{demo_cluster, Cluster, DEMO_TOOLS};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// A stream under test and what identifies its notifications.
struct Listener {
    stream: SseStream,
    /// `Some(id)` for listen streams, whose notifications carry the subscription id.
    subscription: Option<i64>,
}

impl Listener {
    async fn get(url: &str) -> Self {
        let session = Session::open(url, "2025-11-25").await.unwrap();
        let mut stream = session.get_stream(None).await.unwrap();
        let priming = stream.next(WAIT).await.unwrap().unwrap();
        assert!(priming.id.as_deref().unwrap().starts_with("g:") && priming.data.is_empty());
        Self {
            stream,
            subscription: None,
        }
    }

    async fn listen(url: &str, id: i64, filter: Value) -> (Self, Value) {
        let mut stream = listen(url, id, filter).await.unwrap();
        let ack = stream.next(WAIT).await.unwrap().unwrap().json().unwrap();
        assert_eq!(
            ack["method"], "notifications/subscriptions/acknowledged",
            "ack comes first"
        );
        assert_eq!(
            ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            id
        );
        (
            Self {
                stream,
                subscription: Some(id),
            },
            ack,
        )
    }

    /// Waits for the next `method` notification and checks its subscription id.
    async fn expect(&mut self, method: &str) -> Value {
        loop {
            let event = self.stream.next(WAIT).await.unwrap().expect("stream open");
            let Some(msg) = event.json() else { continue };
            if msg["method"] != method {
                continue;
            }
            if let Some(id) = self.subscription {
                assert_eq!(
                    msg["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
                    id
                );
            }
            return msg;
        }
    }

    /// Asserts that nothing but keep-alives arrive for `quiet`.
    async fn expect_nothing(&mut self, quiet: Duration) {
        if let Ok(Some(event)) = self.stream.next(quiet).await {
            panic!("unexpected event {event:?}");
        }
    }
}

async fn listeners(cluster: &Cluster) -> Vec<Listener> {
    let mut out = Vec::new();
    for (i, url) in cluster.gateway_urls().iter().enumerate() {
        out.push(Listener::get(url).await);
        out.push(
            Listener::listen(url, 100 + i as i64, json!({"toolsListChanged": true}))
                .await
                .0,
        );
    }
    out
}

async fn each_gets_one_list_changed(listeners: &mut [Listener]) {
    for l in listeners.iter_mut() {
        l.expect("notifications/tools/list_changed").await;
    }
    for l in listeners.iter_mut() {
        l.expect_nothing(Duration::from_millis(1500)).await;
    }
}

fn names(prefix: &str) -> Vec<String> {
    DEMO_TOOLS.iter().map(|t| format!("{prefix}{t}")).collect()
}

/// The demo tools plus `extra`.
fn all(extra: &[String]) -> Vec<String> {
    DEMO_TOOLS
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .collect()
}

async fn wait(cluster: &Cluster, want: Vec<String>) {
    let refs: Vec<&str> = want.iter().map(String::as_str).collect();
    cluster.wait_for_tools(&refs, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_reaches_every_stream_on_every_node_once() {
    let mut cluster = demo_cluster(2, &[]).await;
    let mut ls = listeners(&cluster).await;

    // A worker joins.
    let x = cluster
        .add_worker(&["demo", "--pool", "extra", "--prefix", "x_"])
        .unwrap();
    wait(&cluster, all(&names("x_"))).await;
    each_gets_one_list_changed(&mut ls).await;

    // The pool's catalogue changes (a newer replica with other tools: a rolling upgrade).
    let y = cluster
        .add_worker(&["demo", "--pool", "extra", "--prefix", "y_"])
        .unwrap();
    wait(&cluster, all(&names("y_"))).await;
    each_gets_one_list_changed(&mut ls).await;

    // The newer replica leaves gracefully: the pool falls back to the older catalogue.
    cluster.workers[y].terminate();
    wait(&cluster, all(&names("x_"))).await;
    each_gets_one_list_changed(&mut ls).await;

    // The last replica is killed and expires.
    cluster.workers[x].kill9();
    wait(&cluster, all(&[])).await;
    each_gets_one_list_changed(&mut ls).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_updates_reach_only_the_listeners_that_asked() {
    let cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    let uri = "file:///project/config.json";
    let (mut wants, ack) = Listener::listen(
        &urls[0],
        7,
        json!({"resourceSubscriptions": [uri], "unknownKind": true}),
    )
    .await;
    assert_eq!(
        ack["params"]["notifications"],
        json!({"resourceSubscriptions": [uri]}),
        "unknown kinds are left out"
    );
    let (mut other, _) = Listener::listen(
        &urls[1],
        8,
        json!({"resourceSubscriptions": ["file:///elsewhere"]}),
    )
    .await;
    // Resources arrive with a later issue; publish the event straight onto the bus.
    cluster
        .nats
        .publish_broadcast(BroadcastKind::ResourceUpdated { uri: uri.into() })
        .await;
    let msg = wants.expect("notifications/resources/updated").await;
    assert_eq!(msg["params"]["uri"], uri);
    other.expect_nothing(Duration::from_millis(1500)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standalone_stream_resumes_the_changes_it_missed_on_another_node() {
    let mut cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut stream = session.get_stream(None).await.unwrap();
    stream.next(WAIT).await.unwrap();
    let x = cluster
        .add_worker(&["demo", "--pool", "extra", "--prefix", "x_"])
        .unwrap();
    let first = loop {
        let e = stream.next(WAIT).await.unwrap().unwrap();
        if e.data.contains("list_changed") {
            break e;
        }
    };
    let cursor = first.id.unwrap();
    drop(stream);
    // A change happens while the client is away.
    cluster.workers[x].terminate();
    cluster.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    let mut resumed = session
        .via(&urls[1])
        .get_stream(Some(&cursor))
        .await
        .unwrap();
    let priming = resumed.next(WAIT).await.unwrap().unwrap();
    assert_eq!(
        priming.id.as_deref(),
        Some(cursor.as_str()),
        "resumes at the cursor"
    );
    let missed = resumed.next(WAIT).await.unwrap().unwrap();
    assert!(
        missed.data.contains("notifications/tools/list_changed"),
        "{missed:?}"
    );
    let seq = |id: &str| id.trim_start_matches("g:").parse::<u64>().unwrap();
    assert!(seq(missed.id.as_deref().unwrap()) > seq(&cursor));
}

#[tokio::test(flavor = "multi_thread")]
async fn hundreds_of_concurrent_streams_each_get_one_notification() {
    // 200 clients, all on loopback.
    let mut cluster = demo_cluster(2, &harness::LOAD_FROM_LOOPBACK).await;
    let urls = cluster.gateway_urls();
    let mut ls = Vec::new();
    for i in 0..200 {
        let url = &urls[i % 2];
        if i % 4 < 2 {
            ls.push(Listener::get(url).await);
        } else {
            ls.push(
                Listener::listen(url, i as i64, json!({"toolsListChanged": true}))
                    .await
                    .0,
            );
        }
    }
    cluster
        .add_worker(&["demo", "--pool", "extra", "--prefix", "x_"])
        .unwrap();
    let results = futures::future::join_all(ls.iter_mut().map(|l| async move {
        l.expect("notifications/tools/list_changed").await;
        l.expect_nothing(Duration::from_millis(1500)).await;
    }))
    .await;
    assert_eq!(results.len(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standalone_resume_past_retention_resyncs_explicitly() {
    let mut cluster = demo_cluster(1, &["--broadcast-retention-secs", "1"]).await;
    let url = cluster.gateway_urls()[0].clone();
    let session = Session::open(&url, "2025-11-25").await.unwrap();
    let mut stream = session.get_stream(None).await.unwrap();
    stream.next(WAIT).await.unwrap();
    // Change 1, seen live: its id is the cursor.
    let x = cluster
        .add_worker(&["demo", "--pool", "extra", "--prefix", "x_"])
        .unwrap();
    let cursor = loop {
        let e = stream.next(WAIT).await.unwrap().unwrap();
        if e.data.contains("list_changed") {
            break e.id.unwrap();
        }
    };
    drop(stream);
    // Change 2 happens while away, and ages out of the broadcast stream.
    cluster.workers[x].terminate();
    cluster.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut resumed = session.get_stream(Some(&cursor)).await.unwrap();
    resumed.next(WAIT).await.unwrap(); // priming
    let warning = resumed.next(WAIT).await.unwrap().unwrap().json().unwrap();
    assert_eq!(warning["method"], "notifications/message", "{warning}");
    assert_eq!(warning["params"]["data"]["reason"], "events_expired");
    let resync = resumed.next(WAIT).await.unwrap().unwrap().json().unwrap();
    assert_eq!(
        resync["method"], "notifications/tools/list_changed",
        "the client refetches instead of missing a change"
    );
}

/// A worker that changes what it serves while it runs (here through its own tools): every
/// change is announced once, including a list flipping back to contents it had moments ago,
/// and prompt changes reach the streams that asked for them.
#[tokio::test(flavor = "multi_thread")]
async fn runtime_catalogue_changes_are_announced_every_time() {
    let mut cluster = Cluster::start(2, &[]).await.unwrap();
    cluster.add_worker(&["conformance"]).unwrap();
    cluster
        .wait_for_tools(&harness::CONFORMANCE_TOOLS, WAIT)
        .await
        .unwrap();
    let urls = cluster.gateway_urls();
    let mut tools = listeners(&cluster).await;
    let mut prompts = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let filter = json!({"promptsListChanged": true});
        let (l, ack) = Listener::listen(url, 200 + i as i64, filter).await;
        assert_eq!(
            ack["params"]["notifications"],
            json!({"promptsListChanged": true})
        );
        prompts.push(l);
    }
    let trigger = |tool: &'static str| {
        let url = urls[0].clone();
        async move {
            let r =
                harness::mcp::stateless(&url, "tools/call", json!({"name": tool, "arguments": {}}))
                    .await
                    .unwrap();
            harness::texts(&r.response().unwrap()["result"])[0].clone()
        }
    };
    // Added, removed, added again: the third change has the same digests as the first.
    for expected in ["added", "removed", "added"] {
        let said = trigger("test_trigger_tool_change").await;
        assert_eq!(said, format!("test_dynamic_tool {expected}"));
        each_gets_one_list_changed(&mut tools).await;
        // The notification may come from the other node's announcement: give this node's
        // watcher a moment to apply the same change.
        let mut listed = Vec::new();
        for _ in 0..50 {
            listed = harness::mcp::list_tool_names_stateless(&urls[1])
                .await
                .unwrap();
            if listed.iter().any(|t| t == "test_dynamic_tool") == (expected == "added") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            listed.iter().any(|t| t == "test_dynamic_tool"),
            expected == "added",
            "{listed:?}"
        );
    }
    // The prompt list changes: only the prompt listeners hear of it.
    assert_eq!(
        trigger("test_trigger_prompt_change").await,
        "test_dynamic_prompt added"
    );
    for l in prompts.iter_mut() {
        l.expect("notifications/prompts/list_changed").await;
    }
    for l in tools.iter_mut().filter(|l| l.subscription.is_some()) {
        l.expect_nothing(Duration::from_millis(1500)).await;
    }
}
