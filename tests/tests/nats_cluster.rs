//! The cluster on a 3-node NATS JetStream cluster (issue 15): streams and buckets at three
//! replicas, gateways and workers given every seed, and what clients see while NATS nodes die.

use std::time::{Duration, Instant};

use bus_schema::topology::{BROADCAST_STREAM, CALLS_STREAM, EVENTS_STREAM};
use harness::counted::{self, Counted};
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

/// [`clustered_demo`] with a counted worker beside the demo worker, and a load of 20 calls a
/// second taking turns between the two: the demo worker is the shipped binary in its own
/// process, the counted one tells whether any call ran twice.
async fn under_load(gateways: usize) -> (Cluster, Counted, Load) {
    let cluster = clustered_demo(gateways).await;
    let counted = Counted::start(&cluster)
        .await
        .expect("the counted worker starts");
    let load = Load::start_with(&cluster.gateway_urls(), 20, &["echo", counted::TOOL])
        .await
        .unwrap();
    (cluster, counted, load)
}

/// No call stored or delivered twice ran twice. A delivery lost with a dying node is run
/// again after JetStream's ack wait (the tool is idempotent): shown, not failed.
fn assert_nothing_ran_twice(what: &str, counted: &Counted) {
    let runs = counted.count();
    eprintln!("{what}: counted worker ran {runs:?}");
    assert!(runs.texts > 0, "{what}: the counted worker ran nothing");
    assert_eq!(runs.silent_repeats, 0, "{what}: calls ran twice: {runs:?}");
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

/// A session opened on one gateway is known at once, on it and on the other, whichever
/// replica of the sessions bucket answers the read. Each round first reloads every server's
/// configuration (a new user), which breaks and remakes routes for a moment, as a network
/// blip does: a replica then lags its leader, and before the gateway asked the leader about a
/// session a replica did not have, 3 of 800 new sessions in one run were answered 404.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_session_is_found_at_once_while_routes_flap() {
    let cluster = clustered_demo(2).await;
    let urls = cluster.gateway_urls();
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..20 {
        // Creating a pool's user reloads every server's configuration.
        let _ = cluster.nats.worker_url(&format!("flap{round}"));
        for _ in 0..5 {
            for (i, url) in urls.iter().enumerate() {
                let outcome = match Session::open(url, "2025-11-25").await {
                    Err(e) => format!("open: {e}"),
                    Ok(s) => match s.via(&urls[(i + 1) % 2]).request("ping", json!({})).await {
                        Ok(r) => format!("ping elsewhere: {}", r.status),
                        Err(e) => format!("ping elsewhere: {e}"),
                    },
                };
                *statuses.entry(outcome).or_default() += 1;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    assert_eq!(
        statuses,
        [("ping elsewhere: 200".to_owned(), 200)].into(),
        "sessions opened (initialize, then notifications/initialized on the same gateway) \
         and their first request on the other gateway"
    );
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
    let (mut cluster, counted, load) = under_load(2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let i = pick(&cluster, victim).await;
    cluster.nats.kill9(i);
    tokio::time::sleep(Duration::from_secs(8)).await;
    cluster.nats.restart(i).unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let what = format!("{victim:?} n{i} killed");
    load.stop().await.assert_none_failed(&what);
    assert_nothing_ran_twice(&what, &counted);
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
/// A worker whose own server froze stores no beat until it has left for another seed;
/// gateways allow for that while a replica of the workers bucket is missing
/// (`catalog/node_loss.rs`). Before they did, such runs listed no worker for most of the
/// freeze (2 runs of 10 failed with `no_worker` for up to 60 % of calls).
#[tokio::test(flavor = "multi_thread")]
async fn a_node_frozen_under_load_fails_no_call() {
    let (cluster, counted, load) = under_load(2).await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let i = pick(&cluster, Victim::CallsLeader).await;
    cluster.nats.pause(i);
    tokio::time::sleep(Duration::from_secs(10)).await;
    cluster.nats.resume(i);
    let thawed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let tally = load.stop().await;
    eprintln!("n{i} frozen: {tally:?}");
    // A frozen node is noticed only by missed heartbeats: its streams' elections, and its
    // clients' move to another seed (two unanswered pings, ~4–6 s), can outlast a call's
    // 10 s failover budget on a loaded machine (ADR 0031). Such a call is refused as
    // `bus_unavailable`: retryable, and only while the node is frozen. Never `no_worker`:
    // a worker stuck on the frozen node is given the time to move.
    assert!(tally.ok > 300, "{tally:?}");
    assert!(
        tally.failed.keys().all(|k| k == "bus_unavailable"),
        "only retryable refusals: {tally:?}"
    );
    // A call sent just before the thaw may still be refused a failover budget (10 s) later,
    // and the thawed node, still believing it leads, takes a moment to step down.
    assert!(
        tally
            .last_failure
            .is_none_or(|at| at <= thawed + Duration::from_secs(20)),
        "calls still failing long after the node came back ({thawed:?}): {tally:?}"
    );
    assert_eq!(tally.skipped, 0, "{tally:?}");
    assert_nothing_ran_twice("frozen", &counted);
}

/// Every node stopped (SIGTERM) and started again in turn, as an upgrade does.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_under_load_fails_no_call() {
    let (mut cluster, counted, load) = under_load(2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..3 {
        cluster.nats.stop(i);
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.nats.restart(i).unwrap();
        // Time for the node to catch its streams up before the next one goes.
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    load.stop().await.assert_none_failed("rolling restart");
    assert_nothing_ran_twice("rolling restart", &counted);
}

/// Two nodes of three down: no quorum, so nothing can be stored. Calls must be refused
/// clearly and promptly (never hang), and served again once a node returns.
#[tokio::test(flavor = "multi_thread")]
async fn losing_quorum_refuses_calls_clearly_and_recovers() {
    let (mut cluster, counted, load) = under_load(2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let follower = pick(&cluster, Victim::Follower).await;
    let leader = pick(&cluster, Victim::MetaLeader).await;
    cluster.nats.kill9(follower);
    cluster.nats.kill9(leader);
    tokio::time::sleep(Duration::from_secs(15)).await;
    load.halt();
    // A call already running when quorum went cannot store its result: it completes once a
    // node is back (the worker hands it back to the queue, and it runs again). So the calls
    // still in flight are waited for with the node back.
    cluster.nats.restart(follower).unwrap();
    let back = Instant::now();
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
        during.slowest_failure < Duration::from_secs(15),
        "refusals come promptly: {during:?}"
    );

    // Sessions can be opened again once the cluster stores again.
    let load = loop {
        match Load::start_with(&cluster.gateway_urls(), 20, &["echo", counted::TOOL]).await {
            Ok(load) => break load,
            Err(e) if back.elapsed() < Duration::from_secs(60) => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("no service 60 s after quorum returned: {e}"),
        }
    };
    let reopened = back.elapsed();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = load.stop().await;
    let full_service = reopened + after.last_failure.unwrap_or_default();
    eprintln!("quorum back: sessions open after {reopened:?}, full service after {full_service:?}: {after:?}");
    assert!(
        after.failed.keys().all(|k| refused(k)),
        "only clear refusals while recovering: {after:?}"
    );
    assert!(
        full_service < Duration::from_secs(55),
        "full service within 55 s of quorum returning: {after:?}"
    );
    assert!(after.ok > 100, "calls served again: {after:?}");
    assert_nothing_ran_twice("quorum lost and back", &counted);
}

/// A resumable stream (session lane) while the events stream's leader is killed: every
/// progress step reaches the client exactly once, then the one result, resuming on the
/// other gateway whenever the stream breaks. And list_changed still reaches a listening
/// stream on every gateway when a pool joins after the kill.
#[tokio::test(flavor = "multi_thread")]
async fn streams_lose_and_repeat_nothing_when_the_events_leader_dies() {
    const STEPS: u64 = 30;
    let mut cluster = clustered_demo(2).await;
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut listeners = Vec::new();
    for url in &urls {
        let listener = Session::open(url, "2025-11-25").await.unwrap();
        let stream = listener.get_stream(None).await.unwrap();
        listeners.push((listener, stream));
    }
    let mut stream = session
        .stream_request(
            "tools/call",
            json!({"name": "slow_count", "arguments": {"n": STEPS, "interval_ms": 300},
                   "_meta": {"progressToken": "p"}}),
        )
        .await
        .unwrap();

    let mut progress: std::collections::BTreeMap<u64, usize> = Default::default();
    let mut results = Vec::new();
    let mut last_id = None;
    let mut killed = None;
    let mut resumes = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while results.is_empty() {
        assert!(Instant::now() < deadline, "stream incomplete: {progress:?}");
        if killed.is_none() && progress.len() >= 3 {
            let i = cluster
                .nats
                .stream_leader(EVENTS_STREAM)
                .await
                .expect("the events stream has a leader");
            eprintln!("killing n{i}, the events stream's leader");
            cluster.nats.kill9(i);
            killed = Some(i);
        }
        match stream.next(Duration::from_secs(15)).await {
            Ok(Some(e)) => {
                if let Some(id) = &e.id {
                    last_id = Some(id.clone());
                }
                let Some(msg) = e.json() else { continue };
                if msg["method"] == "notifications/progress" {
                    let step = msg["params"]["progress"].as_f64().unwrap() as u64;
                    *progress.entry(step).or_default() += 1;
                } else if msg.get("result").is_some() || msg.get("error").is_some() {
                    results.push(msg);
                }
            }
            // The stream broke or went quiet: resume where the client was, on the other node.
            _ => {
                resumes += 1;
                assert!(resumes <= 5, "resumed too often: {progress:?}");
                let via = session.via(&urls[resumes % urls.len()]);
                stream = via.get_stream(last_id.as_deref()).await.unwrap();
            }
        }
    }
    let once: std::collections::BTreeMap<u64, usize> = (1..=STEPS).map(|i| (i, 1)).collect();
    assert_eq!(
        progress, once,
        "progress lost or duplicated ({resumes} resumes)"
    );
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(
        results[0]["result"]["structuredContent"]["count"], STEPS,
        "{results:?}"
    );

    // A pool joins while the node is still down: every listener hears of it.
    cluster
        .add_worker(&["demo", "--pool", "extra", "--prefix", "x_"])
        .unwrap();
    for (i, (_, stream)) in listeners.iter_mut().enumerate() {
        let mut heard = 0;
        let until = Instant::now() + Duration::from_secs(20);
        while heard == 0 && Instant::now() < until {
            if let Ok(Some(e)) = stream.next(Duration::from_secs(1)).await {
                if e.data.contains("notifications/tools/list_changed") {
                    heard += 1;
                }
            }
        }
        assert_eq!(
            heard, 1,
            "gateway {i}: list_changed while n{killed:?} is down"
        );
    }
    cluster.nats.restart(killed.unwrap()).unwrap();
}
