//! The cluster on a 3-node NATS JetStream cluster (issue 15): streams and buckets at three
//! replicas, gateways and workers given every seed, and what clients see while NATS nodes die.

use std::time::{Duration, Instant};

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

/// What a client may see while a NATS node is away: nothing. Every call completes, on both
/// lanes, across kills, freezes and restarts of one node of three.
fn assert_no_call_failed(what: &str, tally: &harness::load::Tally) {
    eprintln!("{what}: {tally:?}");
    assert!(tally.ok > 200, "{what}: too few calls completed: {tally:?}");
    assert_eq!(tally.failures(), 0, "{what}: {tally:?}");
    assert_eq!(tally.skipped, 0, "{what}: calls piled up: {tally:?}");
}

/// Which node a fault hits: named by what it leads when the fault starts.
#[derive(Debug, Clone, Copy)]
enum Victim {
    /// One that leads neither the JetStream meta group nor the calls stream.
    Follower,
    MetaLeader,
    CallsLeader,
}

async fn pick(cluster: &Cluster, victim: Victim) -> usize {
    let meta = cluster.nats.meta_leader().await;
    let calls = cluster.nats.stream_leader(CALLS_STREAM).await;
    let found = match victim {
        Victim::Follower => (0..3).find(|i| Some(*i) != meta && Some(*i) != calls),
        Victim::MetaLeader => meta,
        Victim::CallsLeader => calls,
    };
    let i = found.unwrap_or_else(|| panic!("no {victim:?} (meta {meta:?}, calls {calls:?})"));
    eprintln!("{victim:?} is n{i} (meta leader {meta:?}, calls leader {calls:?})");
    i
}

/// kill -9 of the chosen node under load, restarted 8 s later.
async fn killed_under_load(victim: Victim) {
    let mut cluster = clustered_demo(2).await;
    let load = Load::start(&cluster.gateway_urls(), 20).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let i = pick(&cluster, victim).await;
    cluster.nats.kill9(i);
    tokio::time::sleep(Duration::from_secs(8)).await;
    cluster.nats.restart(i).unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_no_call_failed(&format!("{victim:?} n{i} killed"), &load.stop().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_node_killed_under_load_fails_no_call() {
    killed_under_load(Victim::Follower).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_meta_leader_killed_under_load_fails_no_call() {
    killed_under_load(Victim::MetaLeader).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_calls_stream_leader_killed_under_load_fails_no_call() {
    killed_under_load(Victim::CallsLeader).await;
}

/// SIGSTOP of the calls stream's leader for longer than every heartbeat timeout (the
/// cluster's routes, the clients' pings, JetStream's elections), then SIGCONT: a frozen VM.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_frozen_under_load_fails_no_call() {
    let cluster = clustered_demo(2).await;
    let load = Load::start(&cluster.gateway_urls(), 20).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let i = pick(&cluster, Victim::CallsLeader).await;
    cluster.nats.pause(i);
    tokio::time::sleep(Duration::from_secs(10)).await;
    cluster.nats.resume(i);
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_no_call_failed(&format!("n{i} frozen"), &load.stop().await);
}

/// Every node stopped (SIGTERM) and started again in turn, as an upgrade does.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_under_load_fails_no_call() {
    let mut cluster = clustered_demo(2).await;
    let load = Load::start(&cluster.gateway_urls(), 20).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..3 {
        cluster.nats.stop(i);
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.nats.restart(i).unwrap();
        // Time for the node to catch its streams up before the next one goes.
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    assert_no_call_failed("rolling restart", &load.stop().await);
}

/// Two nodes of three down: no quorum, so nothing can be stored. Calls must be refused
/// clearly and promptly (never hang), and served again once a node returns.
#[tokio::test(flavor = "multi_thread")]
async fn losing_quorum_refuses_calls_clearly_and_recovers() {
    let mut cluster = clustered_demo(2).await;
    let load = Load::start(&cluster.gateway_urls(), 20).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let follower = pick(&cluster, Victim::Follower).await;
    let leader = pick(&cluster, Victim::MetaLeader).await;
    cluster.nats.kill9(follower);
    cluster.nats.kill9(leader);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let during = load.stop().await;
    eprintln!("without quorum: {during:?}");
    // `bus_unavailable`: the call could not be stored within the failover budget.
    // `no_worker`: the worker could not beat either, and gateways that could still read its
    // bucket let it expire (ARCHITECTURE.md, "Faults on a NATS cluster").
    let refused = |kind: &str| matches!(kind, "bus_unavailable" | "no_worker" | "http 503");
    assert!(
        during.failed.keys().all(|k| refused(k)),
        "only clear refusals while no quorum: {during:?}"
    );
    assert!(during.failures() > 50, "calls refused: {during:?}");
    assert!(
        during.slowest < Duration::from_secs(15),
        "no call hangs: {during:?}"
    );

    cluster.nats.restart(follower).unwrap();
    let back = Instant::now();
    // Sessions can be opened again once the cluster stores again.
    let load = loop {
        match Load::start(&cluster.gateway_urls(), 20).await {
            Ok(load) => break load,
            Err(e) if back.elapsed() < Duration::from_secs(60) => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("no service 60 s after quorum returned: {e}"),
        }
    };
    let reopened = back.elapsed();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after = load.stop().await;
    let full_service = reopened + after.last_failure.unwrap_or_default();
    eprintln!("quorum back: sessions open after {reopened:?}, full service after {full_service:?}: {after:?}");
    assert!(
        after.failed.keys().all(|k| refused(k)),
        "only clear refusals while recovering: {after:?}"
    );
    assert!(
        full_service < Duration::from_secs(30),
        "full service within 30 s of quorum returning: {after:?}"
    );
    assert!(after.ok > 400, "calls served again: {after:?}");
}
