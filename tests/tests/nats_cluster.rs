//! The cluster on a 3-node NATS JetStream cluster (issue 15): streams and buckets at three
//! replicas, gateways and workers given every seed, and what clients see while NATS nodes die.

use std::time::Duration;

use bus_schema::topology::{BROADCAST_STREAM, CALLS_STREAM, EVENTS_STREAM};
use harness::load::Load;
use harness::mcp::{stateless, Session};
use harness::{texts, Cluster, DEMO_TOOLS, LOAD_FROM_LOOPBACK};
use serde_json::json;

async fn clustered_demo(gateways: usize) -> Cluster {
    // One loopback client sends all the load: per-client quotas out of the way.
    let mut cluster = Cluster::start_clustered(3, gateways, &LOAD_FROM_LOOPBACK)
        .await
        .expect("a 3-node cluster starts");
    cluster.add_worker(&["demo"]).expect("worker starts");
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(30))
        .await
        .expect("demo tools listed");
    cluster
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_node_cluster_keeps_three_copies_and_serves_both_lanes() {
    let cluster = clustered_demo(2).await;
    let js = async_nats::jetstream::new(cluster.nats.client().await);
    for name in [CALLS_STREAM, EVENTS_STREAM, BROADCAST_STREAM] {
        let info = js
            .get_stream(name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone();
        assert_eq!(info.config.num_replicas, 3, "{name} replicas");
        let replicas = info.cluster.expect("clustered stream info").replicas.len();
        assert_eq!(replicas, 2, "{name}: a leader and two followers");
    }
    assert!(cluster.nats.stream_leader(CALLS_STREAM).await.is_some());
    assert!(cluster.nats.meta_leader().await.is_some());

    let urls = cluster.gateway_urls();
    let r = stateless(
        &urls[0],
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "r3"}}),
    )
    .await
    .unwrap()
    .response()
    .unwrap();
    assert_eq!(texts(&r["result"]), ["r3"], "{r}");
    let session = Session::open(&urls[1], "2025-11-25").await.unwrap();
    let r = session
        .call("echo", json!({"text": "r3 session"}))
        .await
        .unwrap();
    assert_eq!(texts(&r["result"]), ["r3 session"], "{r}");
}

/// Fails today, so it is not run by default (`--ignored` runs it): while one of three NATS
/// servers is down, 15–20 % of calls fail for several seconds. Seen: the worker's heartbeat
/// puts refused ("no stream found") until the bucket's stream has a new leader, so gateways
/// expire a live worker (`no_worker`); publishes refused (`bus_unavailable`); a session read
/// in flight at the kill waits its whole 10 s timeout. Issue 15's next step.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "issue 15: calls fail while a NATS node is down; see the comment"]
async fn a_follower_node_killed_under_load_fails_no_call() {
    let mut cluster = clustered_demo(2).await;
    let load = Load::start(&cluster.gateway_urls(), 20).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let meta = cluster.nats.meta_leader().await;
    let calls = cluster.nats.stream_leader(CALLS_STREAM).await;
    let victim = (0..3)
        .find(|i| Some(*i) != meta && Some(*i) != calls)
        .expect("a node that leads neither");
    cluster.nats.kill9(victim);
    tokio::time::sleep(Duration::from_secs(8)).await;
    cluster.nats.restart(victim).unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let tally = load.stop().await;
    eprintln!("killed n{victim} (meta leader {meta:?}, calls leader {calls:?}): {tally:?}");
    assert!(tally.ok > 200, "{tally:?}");
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert_eq!(tally.skipped, 0, "{tally:?}");
}
