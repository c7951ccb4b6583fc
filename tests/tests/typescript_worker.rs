//! A worker written in TypeScript with the SDK in `worker/typescript` (on nats.js v3 and zod
//! 4) serves through a two-gateway cluster whose NATS enforces the pool's permissions: its
//! tools on both lanes through both gateways, driven by the real Python MCP client (progress,
//! an elicitation answered by the client's own callback on each lane, argument validation),
//! a tool error, cancellation from another node, and a graceful drain on SIGTERM that lets a
//! running call finish before the worker leaves the catalogue.

use std::process::Command;
use std::time::Duration;

use harness::mcp::{stateless, Session};
use harness::{node24, run_python_client, service_ping, texts, workspace_root, Cluster, Proc};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);
const POOL: &str = "ts-example";
const TS_TOOLS: [&str; 5] = ["ts_add", "ts_countdown", "ts_fail", "ts_greet", "ts_whoami"];

/// Starts the SDK's example worker, logged in as its pool's user with a password file (never
/// a password in a URL or on the command line); its log is `ts-worker.log`.
fn start_ts_worker(c: &Cluster) -> Proc {
    let script = workspace_root().join("worker/typescript/dist/examples/example-worker.js");
    assert!(
        script.exists(),
        "the TypeScript SDK is not built: run scripts/test.sh"
    );
    let (url, user, password) = c.nats.worker_login(POOL);
    let password_file = c.dir.path().join("ts-worker.password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let mut cmd = Command::new(node24());
    cmd.arg(script)
        .env("MCPBUS_NATS_URL", url)
        .env("MCPBUS_NATS_USER", user)
        .env("MCPBUS_NATS_PASSWORD_FILE", &password_file)
        .env("MCPBUS_INSTANCE", "ts1");
    Proc::spawn("ts-worker", &mut cmd, c.dir.path()).expect("the TypeScript worker starts")
}

fn log_of(c: &Cluster) -> String {
    std::fs::read_to_string(c.dir.path().join("ts-worker.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typescript_worker_serves_both_lanes_through_both_gateways_and_drains() {
    let c = Cluster::start(2, &[]).await.unwrap();
    let mut worker = start_ts_worker(&c);
    c.wait_for_tools(&TS_TOOLS, WAIT).await.unwrap();
    let urls = c.gateway_urls();

    // A real MCP client on each lane, each through another gateway.
    for (url, mode, lane_version) in [
        (&urls[0], "legacy", "2025-11-25"),
        (&urls[1], "auto", "2026-07-28"),
    ] {
        let out = run_python_client("py_ts_worker.py", url, mode).await;
        assert_eq!(out["protocol_version"], lane_version, "{out}");
        assert_eq!(out["tools"], json!(TS_TOOLS), "{out}");
        assert_eq!(out["add"], json!({"sum": 42}), "{out}");
        assert_eq!(out["countdown"], json!(["liftoff"]), "{out}");
        assert_eq!(
            out["progress"],
            json!([[1.0, 3.0], [2.0, 3.0], [3.0, 3.0]]),
            "{out}"
        );
        assert_eq!(out["greet"], json!(["Hello, Ada!"]), "{out}");
        assert_eq!(out["elicited"], json!(["What is your name?"]), "{out}");
        assert_eq!(out["bad_is_error"], true, "{out}");
        assert!(
            out["bad"][0]
                .as_str()
                .unwrap()
                .starts_with("invalid arguments"),
            "{out}"
        );
    }

    // Stateless lane, each gateway: a tool error the model reads, and the first round of an
    // input request for a client that can answer it (the Python client did the rest).
    for url in &urls {
        let r = stateless(
            url,
            "tools/call",
            json!({"name": "ts_fail", "arguments": {"message": "nope"}}),
        )
        .await
        .unwrap();
        let result = &r.response().unwrap()["result"];
        assert_eq!(
            (result["isError"].clone(), texts(result)),
            (json!(true), vec!["nope".to_owned()])
        );
        let r = stateless(
            url,
            "tools/call",
            json!({"name": "ts_greet", "arguments": {},
                "_meta": {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}}),
        )
        .await
        .unwrap();
        let result = &r.response().unwrap()["result"];
        assert_eq!(result["resultType"], "input_required", "{result}");
        assert_eq!(
            result["inputRequests"]["name"]["method"],
            "elicitation/create"
        );
        // Without the capability the client is never asked: -32021.
        let r = stateless(
            url,
            "tools/call",
            json!({"name": "ts_greet", "arguments": {}}),
        )
        .await
        .unwrap();
        assert_eq!(r.error_code(), Some(-32021), "{}", r.body);
    }

    // Session lane: cancelled through the other gateway while it runs.
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let other = session.via(&urls[1]);
    let mut long = session
        .stream_request(
            "tools/call",
            json!({"name": "ts_countdown", "arguments": {"n": 200, "interval_ms": 50}}),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 42}});
    assert_eq!(other.post(&cancel).await.unwrap().status, 202);
    let rest = long.collect(WAIT).await.unwrap();
    assert!(rest
        .iter()
        .all(|e| e.json().is_none_or(|m| m.get("result").is_none())));
    let until = tokio::time::Instant::now() + WAIT;
    while !log_of(&c).contains("cancelled") {
        assert!(
            tokio::time::Instant::now() < until,
            "no cancellation in:\n{}",
            log_of(&c)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Visible to NATS service tooling as mcpbus-<pool>, answering under the service inbox.
    let client = c.nats.client().await;
    let ping = service_ping(&client, POOL).await;
    assert_eq!(ping["name"], "mcpbus-ts-example", "{ping}");
    assert_eq!(ping["metadata"]["instance"], "ts1", "{ping}");

    // SIGTERM while a call runs: the call still finishes (drain), then the worker
    // deregisters and exits 0, and its tools leave the catalogue at once.
    let mut running = session
        .stream_request(
            "tools/call",
            json!({"name": "ts_countdown", "arguments": {"n": 15, "interval_ms": 100}}),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.terminate();
    let events = running.collect(WAIT).await.unwrap();
    let done = events
        .iter()
        .filter_map(|e| e.json())
        .find(|m| m.get("result").is_some())
        .unwrap_or_else(|| panic!("no result while draining: {events:?}\n{}", log_of(&c)));
    assert_eq!(texts(&done["result"]), vec!["liftoff"]);
    let status = worker.wait_exit(WAIT).expect("the worker exited");
    assert!(status.success(), "{status:?}\n{}", log_of(&c));
    c.wait_for_tools(&[], Duration::from_secs(3)).await.unwrap();
    assert!(
        !c.nats.logged_violation("pool-ts-example"),
        "{}",
        c.nats.node(0).proc.log_text()
    );
}

/// `examples/kit-worker.ts` serves the kit tools as PROTOCOL.md §10 states them, on the pool,
/// login and instance the kit passes in the environment (a smoke test until the kit itself
/// runs it).
#[tokio::test(flavor = "multi_thread")]
async fn the_kit_worker_serves_the_kit_tools() {
    let c = Cluster::start(1, &[]).await.unwrap();
    let (url, user, password) = c.nats.worker_login("kit-ts");
    let mut cmd = Command::new(node24());
    cmd.arg(workspace_root().join("worker/typescript/dist/examples/kit-worker.js"))
        .env("MCPBUS_NATS_URL", url)
        .env("MCPBUS_NATS_USER", user)
        .env("MCPBUS_NATS_PASSWORD", password)
        .env("MCPBUS_POOL", "kit-ts")
        .env("MCPBUS_INSTANCE", "kit1");
    let mut worker = Proc::spawn("ts-kit-worker", &mut cmd, c.dir.path()).unwrap();
    let kit = [
        "kit_ask",
        "kit_echo",
        "kit_fail",
        "kit_once",
        "kit_progress",
        "kit_slow",
    ];
    c.wait_for_tools(&kit, WAIT).await.unwrap();
    let url = &c.gateway_urls()[0];
    let call = |name: &str, arguments: Value| {
        let params = json!({"name": name, "arguments": arguments,
            "_meta": {"progressToken": "k", "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}});
        async move { stateless(url, "tools/call", params).await.unwrap() }
    };
    let r = call("kit_echo", json!({"text": "hi"})).await;
    assert_eq!(texts(&r.response().unwrap()["result"]), vec!["hi"]);
    let r = call("kit_echo", json!({})).await;
    assert_eq!(r.response().unwrap()["result"]["isError"], true);
    let r = call("kit_once", json!({"text": "one"})).await;
    assert_eq!(texts(&r.response().unwrap()["result"]), vec!["one"]);
    let r = call("kit_fail", json!({"message": "broken"})).await;
    let result = &r.response().unwrap()["result"];
    assert_eq!(
        (result["isError"].clone(), texts(result)),
        (json!(true), vec!["broken".to_owned()])
    );
    let r = call("kit_progress", json!({"steps": 3, "delay_ms": 10})).await;
    let messages = r.messages();
    let progress: Vec<_> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| {
            (
                m["params"]["progress"].as_f64(),
                m["params"]["total"].as_f64(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        vec![
            (Some(1.0), Some(3.0)),
            (Some(2.0), Some(3.0)),
            (Some(3.0), Some(3.0))
        ]
    );
    assert_eq!(texts(&r.response().unwrap()["result"]), vec!["done 3"]);
    let r = call("kit_slow", json!({"ms": 50})).await;
    assert_eq!(texts(&r.response().unwrap()["result"]), vec!["slept 50"]);
    let r = call("kit_ask", json!({})).await;
    let result = &r.response().unwrap()["result"];
    assert_eq!(result["resultType"], "input_required", "{result}");
    assert_eq!(
        result["inputRequests"]["answer"]["params"]["message"],
        "kit?"
    );
    worker.terminate();
    assert!(worker.wait_exit(WAIT).expect("exited").success());
}
