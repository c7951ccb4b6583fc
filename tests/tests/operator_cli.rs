//! The operator's view of a running cluster (issue 14, ADR 0021): `mcpbusctl`, logged in with
//! the `operator` role's permissions, lists the gateways (which register themselves, with
//! their open streams, and leave on a graceful stop; one killed goes silent, then ages out of
//! the bucket), the pools with their replicas, tools and
//! queue lag while a pool's only worker is busy, storage use; counts sessions and tasks; ends
//! a session as its client's DELETE would; and says in one line when NATS is unreachable or
//! the cluster's buckets are missing.

use std::time::Duration;

use harness::mcp::{stateless, Session};
use harness::{ctl, Cluster, CONFORMANCE_TOOLS, DEMO_TOOLS};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// Polls `mcpbusctl ARGS --json` until `done` holds, or fails with the last output.
async fn wait_for_json(
    url: &str,
    args: &[&str],
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let out = ctl::json(url, args).await;
        if done(&out) {
            return out;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{what} not seen within {WAIT:?}; last:\n{out:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pool<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["pools"]
        .as_array()?
        .iter()
        .find(|p| p["pool"] == name)
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_gateways_pools_tools_and_the_lag_of_a_busy_pool() {
    let mut c = Cluster::start(2, &[]).await.unwrap();
    // One replica running one call at a time: the next calls wait in the queue.
    c.add_worker(&["demo", "--instance", "w1", "--max-in-flight", "1"])
        .unwrap();
    c.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    let operator = c.nats.operator_url();
    let urls = c.gateway_urls();

    // Three slow calls: one runs, two wait.
    let mut calls = Vec::new();
    for i in 0..3 {
        let url = urls[i % 2].clone();
        calls.push(tokio::spawn(async move {
            stateless(
                &url,
                "tools/call",
                json!({"name": "wait", "arguments": {"ms": 4000, "steps": 0}}),
            )
            .await
            .unwrap()
        }));
    }
    // A standalone stream open on the first gateway, which its record counts.
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut standalone = session.get_stream(None).await.unwrap();
    standalone.next(WAIT).await.unwrap();
    let first = c.gateways[0].port;

    let status = wait_for_json(&operator, &["status"], "two queued, one running", |s| {
        pool(s, "demo")
            .is_some_and(|p| p["queue"]["pending"] == 2 && p["queue"]["ack_pending"] == 1)
    })
    .await;
    let demo = pool(&status, "demo").unwrap();
    assert_eq!(demo["replicas"], 1, "{status:#}");
    assert_eq!(demo["instances"][0]["instance"], "w1");
    assert_eq!(demo["instances"][0]["max_in_flight"], 1);
    assert_eq!(demo["tools"], json!(DEMO_TOOLS), "{status:#}");
    assert_eq!(status["conflicts"], json!([]));
    let addresses: Vec<String> = status["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["address"].as_str().unwrap().to_owned())
        .collect();
    let mut want: Vec<String> = c
        .gateways
        .iter()
        .map(|g| format!("127.0.0.1:{}", g.port))
        .collect();
    let mut seen = addresses.clone();
    seen.sort();
    want.sort();
    assert_eq!(seen, want, "{status:#}");
    for g in status["gateways"].as_array().unwrap() {
        assert_eq!(g["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(g["live"], true);
        assert!(g["instance"].as_str().unwrap().starts_with("gw-"));
    }
    let stores: Vec<&str> = status["storage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for store in [
        "MCPBUS_CALLS",
        "MCPBUS_EVENTS",
        "KV_mcpbus-sessions",
        "KV_mcpbus-gateways",
    ] {
        assert!(stores.contains(&store), "{store} missing from {stores:?}");
    }
    for s in status["storage"].as_array().unwrap() {
        assert_eq!(s["exists"], true, "{s}");
        assert!(s["max_bytes"].as_i64().unwrap() > 0, "{s}");
    }
    let calls_store = status["storage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "MCPBUS_CALLS")
        .unwrap();
    assert!(
        calls_store["messages"].as_u64().unwrap() >= 2,
        "{calls_store}"
    );

    // The gateway holding the standalone stream says so at its next beat.
    wait_for_json(&operator, &["status"], "the open standalone stream", |s| {
        s["gateways"].as_array().unwrap().iter().any(|g| {
            g["address"] == format!("127.0.0.1:{first}") && g["open_streams"]["standalone"] == 1
        })
    })
    .await;

    // The same, for people and for scripts.
    let text = ctl::run(&operator, &["status"]).await;
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    for heading in ["GATEWAYS", "POOLS", "NAME CONFLICTS", "STORAGE"] {
        assert!(text.contains(heading), "{heading} missing:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("demo ") && l.contains(" w1")),
        "{text}"
    );
    let pools = ctl::json(&operator, &["pools"]).await;
    assert_eq!(pools[0]["pool"], "demo", "{pools:#}");
    let tools = ctl::json(&operator, &["tools"]).await;
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, DEMO_TOOLS);
    assert!(tools
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["pool"] == "demo"));

    for call in calls {
        let r = call.await.unwrap();
        assert!(r.response().unwrap().get("error").is_none(), "{}", r.body);
    }
    // The queue drains.
    wait_for_json(&operator, &["pools"], "an empty queue", |p| {
        p[0]["queue"]["pending"] == 0 && p[0]["queue"]["ack_pending"] == 0
    })
    .await;

    // A gateway that stops gracefully takes its record with it.
    drop(standalone);
    let second = c.gateways.pop().unwrap();
    second.proc.terminate();
    let status = wait_for_json(&operator, &["status"], "one gateway left", |s| {
        s["gateways"].as_array().is_some_and(|g| g.len() == 1)
    })
    .await;
    assert_eq!(
        status["gateways"][0]["address"],
        format!("127.0.0.1:{first}")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_that_dies_goes_silent_then_its_record_ages_out() {
    let mut c = Cluster::start(2, &[]).await.unwrap();
    let operator = c.nats.operator_url();
    let dead = format!("127.0.0.1:{}", c.gateways[1].port);
    wait_for_json(&operator, &["status"], "two live gateways", |s| {
        s["gateways"]
            .as_array()
            .is_some_and(|g| g.len() == 2 && g.iter().all(|g| g["live"] == true))
    })
    .await;
    c.gateways[1].proc.kill9();
    // Three missed beats (15 s) make it silent; the bucket's max age (20 s) removes it.
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut seen_silent = false;
    loop {
        let status = ctl::json(&operator, &["status"]).await;
        let gateways = status["gateways"].as_array().unwrap().clone();
        let record = gateways.iter().find(|g| g["address"] == dead.as_str());
        match record {
            Some(g) if g["live"] == false => seen_silent = true,
            Some(_) => {}
            None => {
                assert_eq!(gateways.len(), 1, "{status:#}");
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the dead gateway is still listed: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(seen_silent, "the dead gateway was never shown silent");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_and_tasks_are_counted_and_an_operator_ends_a_session() {
    let mut c = Cluster::start(2, &[]).await.unwrap();
    c.add_worker(&["conformance"]).unwrap();
    c.wait_for_tools(&CONFORMANCE_TOOLS, WAIT).await.unwrap();
    let operator = c.nats.operator_url();
    let urls = c.gateway_urls();

    let kept = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let ended = Session::open(&urls[1], "2025-11-25").await.unwrap();
    let sessions = ctl::json(&operator, &["sessions"]).await;
    assert_eq!(sessions["count"], 2, "{sessions:#}");
    assert_eq!(sessions["ages"][0]["range"], "<1m");
    assert_eq!(sessions["ages"][0]["count"], 2);
    let text = String::from_utf8(ctl::run(&operator, &["sessions"]).await.stdout).unwrap();
    assert!(text.starts_with("2 sessions"), "{text}");
    assert!(
        !text.contains(&kept.id) && !text.contains(&ended.id),
        "no ids: {text}"
    );

    // A task (it asks its client a question).
    let meta = json!({"io.modelcontextprotocol/clientCapabilities": {
        "elicitation": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}}});
    let created = stateless(
        &urls[0],
        "tools/call",
        json!({"name": "confirm_delete", "arguments": {"filename": "a.txt"}, "_meta": meta}),
    )
    .await
    .unwrap();
    let created = created.response().unwrap()["result"].clone();
    let task = created["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {created}"));
    // Its record says `working` until a `tasks/get` moves it on from the stored replies.
    let tasks = ctl::json(&operator, &["tasks"]).await;
    assert_eq!(tasks["count"], 1, "{tasks:#}");
    assert_eq!(tasks["states"], json!({"working": 1}), "{tasks:#}");
    assert_eq!(tasks["tasks"][0]["id"], task);
    assert_eq!(tasks["tasks"][0]["pool"], "conformance");
    assert_eq!(tasks["tasks"][0]["tool"], "confirm_delete");
    assert_eq!(tasks["tasks"][0]["expired"], false);
    assert!(
        tasks["tasks"][0].get("params").is_none(),
        "no content: {tasks:#}"
    );

    // The operator ends a session whose stream is open on the other gateway.
    let mut stream = ended.via(&urls[0]).get_stream(None).await.unwrap();
    stream.next(WAIT).await.unwrap();
    let purged = ctl::run(&operator, &["purge-session", &ended.id]).await;
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    let closed = loop {
        match stream.next(WAIT).await {
            Ok(Some(_)) => continue,
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    assert!(closed, "the purged session's stream was not closed");
    let r = ended.request("tools/list", json!({})).await.unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    let r = kept.request("tools/list", json!({})).await.unwrap();
    assert_eq!(r.status, 200, "the other session lives on: {}", r.body);
    let sessions = ctl::json(&operator, &["sessions"]).await;
    assert_eq!(sessions["count"], 1, "{sessions:#}");

    // Once gone, it is an error to purge it again.
    let again = ctl::run(&operator, &["purge-session", &ended.id]).await;
    assert!(!again.status.success());
    let err = String::from_utf8(again.stderr).unwrap();
    assert!(err.contains("no session"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_nats_or_a_missing_bucket_is_one_clear_line() {
    let nobody = format!("nats://127.0.0.1:{}", harness::free_port());
    for command in ["status", "pools", "tools", "sessions", "tasks"] {
        let out = ctl::run(&nobody, &[command]).await;
        assert!(!out.status.success(), "{command} succeeded without NATS");
        assert!(out.stdout.is_empty(), "{command}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{command}: {err}");
        assert!(err.starts_with("mcpbusctl: "), "{err}");
        assert!(err.contains(&nobody), "names the server: {err}");
    }

    // A NATS no gateway ever started on: no buckets.
    let dir = tempfile::tempdir().unwrap();
    let bare = harness::Nats::start(dir.path()).unwrap();
    for (command, bucket) in [
        (&["status"][..], "mcpbus-workers"),
        (&["sessions"][..], "mcpbus-sessions"),
        (&["drain", "demo/w1"][..], "mcpbus-workers"),
    ] {
        let out = ctl::run(&bare.operator_url(), command).await;
        assert!(!out.status.success(), "{command:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{command:?}: {err}");
        assert!(
            err.contains(&format!("bucket {bucket} does not exist")),
            "{command:?}: {err}"
        );
    }
}
