//! A worker written in Python with the SDK in `worker/python` (built from PROTOCOL.md, on
//! `nats-py`) serves through the cluster: its tools, resource and prompt on both lanes and
//! through both gateways, with progress, logs, tool errors, argument validation,
//! cancellation from another node, and a graceful stop that takes it out of the catalogue.
//! Then the SDKs' agreed rules (issue 16) on the real bus: `ctx.ask` answered by a real MCP
//! client on both lanes, a catalogue changed at run time reaching clients as `list_changed`,
//! malformed calls that leave the worker serving, and a drain that lets a running call finish.

use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use harness::mcp::{stateless, Session};
use harness::{
    run_python_client, service_ping, start_python_example_worker, texts, venv_python,
    workspace_root, Cluster, Proc, PY_EXAMPLE_TOOLS,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn log_of(c: &Cluster) -> String {
    std::fs::read_to_string(c.dir.path().join("py-worker.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_worker_serves_through_both_lanes_and_both_gateways() {
    let c = Cluster::start(2, &[]).await.unwrap();
    let mut worker = start_python_example_worker(&c);
    c.wait_for_tools(&PY_EXAMPLE_TOOLS, WAIT).await.unwrap();
    let urls = c.gateway_urls();

    // Stateless lane, each gateway: structured output, argument validation, tool errors.
    for url in &urls {
        let r = stateless(
            url,
            "tools/call",
            json!({"name": "py_add", "arguments": {"a": 2, "b": 3}}),
        )
        .await
        .unwrap();
        let result = &r.response().unwrap()["result"];
        assert_eq!(result["structuredContent"], json!({"sum": 5}), "{result}");
        let r = stateless(
            url,
            "tools/call",
            json!({"name": "py_add", "arguments": {"a": "x"}}),
        )
        .await
        .unwrap();
        let result = &r.response().unwrap()["result"];
        assert_eq!(result["isError"], true);
        assert!(
            texts(result)[0].starts_with("invalid arguments"),
            "{result}"
        );
        let r = stateless(
            url,
            "tools/call",
            json!({"name": "py_fail", "arguments": {"message": "nope"}}),
        )
        .await
        .unwrap();
        let result = &r.response().unwrap()["result"];
        assert_eq!(
            (result["isError"].clone(), texts(result)),
            (json!(true), vec!["nope".to_owned()])
        );
    }

    // Session lane: progress and logs on the stream, a resource and a prompt.
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let mut stream = session
        .stream_request(
            "tools/call",
            json!({"name": "py_countdown", "arguments": {"n": 3, "interval_ms": 10},
                "_meta": {"progressToken": "count"}}),
        )
        .await
        .unwrap();
    let events: Vec<_> = stream
        .collect(WAIT)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.json())
        .collect();
    let count = |method: &str| events.iter().filter(|m| m["method"] == method).count();
    assert_eq!(count("notifications/progress"), 3, "{events:?}");
    assert_eq!(count("notifications/message"), 3, "{events:?}");
    let done = events.iter().find(|m| m.get("result").is_some()).unwrap();
    assert_eq!(texts(&done["result"]), vec!["liftoff"]);
    let other = session.via(&urls[1]);
    let read = other
        .request("resources/read", json!({"uri": "py://motd"}))
        .await
        .unwrap();
    assert_eq!(
        read.response().unwrap()["result"]["contents"][0]["text"],
        "Hello from a Python worker."
    );
    let prompt = other
        .request(
            "prompts/get",
            json!({"name": "py_review", "arguments": {"code": "x = 1"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        prompt.response().unwrap()["result"]["messages"][0]["content"]["text"],
        "Please review this python code:\nx = 1"
    );
    let missing = other
        .request("prompts/get", json!({"name": "py_review", "arguments": {}}))
        .await
        .unwrap();
    assert_eq!(missing.error_code(), Some(-32602));

    // Cancelled through the other gateway while it runs.
    let mut long = session
        .stream_request(
            "tools/call",
            json!({"name": "py_countdown", "arguments": {"n": 100}}),
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

    // Visible to NATS service tooling as mcpbus-<pool>.
    let client = c.nats.client().await;
    let ping = service_ping(&client, "py-example").await;
    assert_eq!(ping["name"], "mcpbus-py-example", "{ping}");
    assert_eq!(ping["metadata"]["pool"], "py-example", "{ping}");

    // SIGTERM: drains, deregisters, exits 0; its tools leave the catalogue at once.
    worker.terminate();
    let status = worker.wait_exit(WAIT).expect("the worker exited");
    assert!(status.success(), "{status:?}\n{}", log_of(&c));
    c.wait_for_tools(&[], Duration::from_secs(3)).await.unwrap();
}

/// The tools of the kit worker (`worker/python/examples/kit_worker.py`), PROTOCOL.md §10.
const KIT_TOOLS: [&str; 6] = [
    "kit_ask",
    "kit_echo",
    "kit_fail",
    "kit_once",
    "kit_progress",
    "kit_slow",
];

/// Starts a Python worker script as the kit starts one: NATS, pool and instance from the
/// environment, connected as the pool's user. Its log is `<name>.log` in the cluster's dir.
fn start_py(c: &Cluster, name: &str, script: &str, pool: &str) -> Proc {
    start_py_with(c, name, script, pool, &[])
}

fn start_py_with(c: &Cluster, name: &str, script: &str, pool: &str, env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(venv_python());
    cmd.arg(workspace_root().join(script))
        .env("MCPBUS_NATS_URL", c.nats.worker_url(pool))
        .env("MCPBUS_POOL", pool)
        .env("MCPBUS_INSTANCE", name)
        .envs(env.iter().copied());
    Proc::spawn(name, &mut cmd, c.dir.path()).expect("the Python worker starts")
}

fn start_kit_worker(c: &Cluster) -> Proc {
    start_py(
        c,
        "kit-worker",
        "worker/python/examples/kit_worker.py",
        "kit-python",
    )
}

fn log_named(c: &Cluster, name: &str) -> String {
    std::fs::read_to_string(c.dir.path().join(format!("{name}.log"))).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn ctx_ask_is_answered_by_a_real_client_on_both_lanes() {
    let c = Cluster::start(2, &[]).await.unwrap();
    let _worker = start_kit_worker(&c);
    c.wait_for_tools(&KIT_TOOLS, WAIT).await.unwrap();
    let urls = c.gateway_urls();
    // A 2025 session: a `request` reply, answered on the answer subject through the gateway
    // the client answered; 2026-07-28: an InputRequiredResult round, then the retry.
    for (url, mode, version) in [
        (&urls[0], "legacy", "2025-11-25"),
        (&urls[1], "auto", "2026-07-28"),
    ] {
        let seen = run_python_client("py_ask_client.py", url, mode).await;
        assert_eq!(seen["protocol_version"], version, "{seen}");
        assert_eq!(seen["asked"], json!(["answer: yes"]), "{seen}");
        assert_eq!(seen["asked_is_error"], false, "{seen}");
        assert_eq!(seen["questions"], json!(["kit?"]), "{seen}");
        // A client that declared no elicitation is never asked: -32021 on 2026-07-28, a tool
        // error on a 2025 session (which has no code for it).
        if mode == "auto" {
            assert_eq!(seen["without_capability"]["code"], -32021, "{seen}");
        } else {
            assert_eq!(seen["without_capability"]["is_error"], true, "{seen}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalogue_changed_at_run_time_reaches_clients_as_list_changed() {
    let c = Cluster::start(2, &[]).await.unwrap();
    let _worker = start_py(
        &c,
        "py-sdk-worker",
        "tests/clients/py_sdk_worker.py",
        "pysdk",
    );
    c.wait_for_tools(&["grow", "shrink"], WAIT).await.unwrap();
    let urls = c.gateway_urls();
    // A client on the other gateway listens on its session's standalone stream.
    let listener = Session::open(&urls[1], "2025-11-25").await.unwrap();
    let mut stream = listener.get_stream(None).await.unwrap();
    stream.next(WAIT).await.unwrap().expect("priming event");

    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let grew = session.call("grow", json!({})).await.unwrap();
    assert_eq!(texts(&grew["result"]), vec!["grew"], "{grew}");
    expect_list_changed(&mut stream).await;
    let listed = listener.request("tools/list", json!({})).await.unwrap();
    let names: Vec<String> = listed.response().unwrap()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"grown".to_owned()), "{names:?}");
    let grown = listener.call("grown", json!({"text": "hi"})).await.unwrap();
    assert_eq!(texts(&grown["result"]), vec!["grown: hi"], "{grown}");

    let shrank = session.call("shrink", json!({})).await.unwrap();
    assert_eq!(texts(&shrank["result"]), vec!["shrank"], "{shrank}");
    expect_list_changed(&mut stream).await;
    c.wait_for_tools(&["grow", "shrink"], WAIT).await.unwrap();
}

async fn expect_list_changed(stream: &mut harness::sse::SseStream) {
    loop {
        let event = stream.next(WAIT).await.unwrap().expect("stream open");
        if event
            .json()
            .is_some_and(|m| m["method"] == "notifications/tools/list_changed")
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_calls_leave_the_worker_serving() {
    let c = Cluster::start(1, &[]).await.unwrap();
    let _worker = start_kit_worker(&c);
    c.wait_for_tools(&KIT_TOOLS, WAIT).await.unwrap();
    let admin = c.nats.client().await;
    let js = async_nats::jetstream::new(admin.clone());
    let queue = "mcpbus.v2.call.kit-python";
    let reply_to = "mcpbus.v2.reply.kit-python.gw-test.bad1";
    let mut replies = admin.subscribe(reply_to).await.unwrap();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 30_000;
    let call = |body: Value| body.to_string().into_bytes();
    for body in [
        // Nobody to answer: no call_id; not JSON; reply_to not a string.
        call(
            json!({"protocol": 2, "method": "tools/call", "reply_to": reply_to,
            "deadline_ms": deadline, "lane": "stateless"}),
        ),
        b"{not json".to_vec(),
        call(
            json!({"protocol": 2, "call_id": "bad0", "method": "tools/call", "reply_to": 7,
            "deadline_ms": deadline, "lane": "stateless"}),
        ),
        // Answerable: no method.
        call(
            json!({"protocol": 2, "call_id": "bad1", "reply_to": reply_to,
            "deadline_ms": deadline, "lane": "stateless"}),
        ),
    ] {
        js.publish(queue, body.into())
            .await
            .unwrap()
            .await
            .expect("stored in the calls stream");
    }
    let answer = tokio::time::timeout(WAIT, replies.next())
        .await
        .expect("the answerable malformed call is answered")
        .unwrap();
    let answer: Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert_eq!(
        answer["error"]["data"]["reason"], "malformed_call",
        "{answer}"
    );

    // Still serving, through the gateway.
    let r = stateless(
        &c.gateway_urls()[0],
        "tools/call",
        json!({"name": "kit_echo", "arguments": {"text": "still here"}}),
    )
    .await
    .unwrap();
    assert_eq!(texts(&r.response().unwrap()["result"]), vec!["still here"]);
    // Every bad message was terminated: none is waiting for redelivery.
    let stream = js.get_stream("MCPBUS_CALLS").await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer("mcpbus-pool-kit-python").await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0), "{info:?}");
    let log = log_named(&c, "kit-worker");
    assert_eq!(
        log.matches("discarding an unreadable call").count(),
        3,
        "{log}"
    );
    assert!(!log.contains("Traceback"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drain_lets_a_running_call_finish() {
    let c = Cluster::start(1, &[]).await.unwrap();
    let mut worker = start_kit_worker(&c);
    c.wait_for_tools(&KIT_TOOLS, WAIT).await.unwrap();
    let url = c.gateway_urls()[0].clone();
    let running = tokio::spawn(async move {
        stateless(
            &url,
            "tools/call",
            json!({"name": "kit_slow", "arguments": {"ms": 2500}}),
        )
        .await
        .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    worker.terminate();
    let r = tokio::time::timeout(WAIT, running)
        .await
        .expect("the running call finished")
        .unwrap();
    assert_eq!(
        texts(&r.response().unwrap()["result"]),
        vec!["slept 2500"],
        "{}",
        log_named(&c, "kit-worker")
    );
    let status = worker.wait_exit(WAIT).expect("the worker exited");
    assert!(status.success(), "{status:?}");
    c.wait_for_tools(&[], Duration::from_secs(3)).await.unwrap();
    let log = log_named(&c, "kit-worker");
    assert!(
        log.contains("draining") && !log.contains("drain timeout passed"),
        "{log}"
    );
}

/// The Python SDK serves its own metrics (prometheus_client, `MCPBUS_WORKER_METRICS_LISTEN`)
/// under the same names as the Rust SDK: calls by tool and outcome, handler time, in flight.
#[tokio::test(flavor = "multi_thread")]
async fn a_python_worker_serves_its_own_metrics() {
    let c = Cluster::start(1, &[]).await.unwrap();
    let addr = format!("127.0.0.1:{}", harness::free_port());
    let _worker = start_py_with(
        &c,
        "kit-worker",
        "worker/python/examples/kit_worker.py",
        "kit-python",
        &[("MCPBUS_WORKER_METRICS_LISTEN", &addr)],
    );
    c.wait_for_tools(&KIT_TOOLS, WAIT).await.unwrap();
    let session = Session::open(&c.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    for _ in 0..2 {
        session
            .call("kit_echo", json!({"text": "x"}))
            .await
            .unwrap();
    }
    session
        .call("kit_fail", json!({"message": "no"}))
        .await
        .unwrap();
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (series, want) in [
        (
            r#"mcpbus_worker_calls_total{outcome="result",pool="kit-python",tool="kit_echo"}"#,
            2.0,
        ),
        (
            r#"mcpbus_worker_calls_total{outcome="tool_error",pool="kit-python",tool="kit_fail"}"#,
            1.0,
        ),
        (
            r#"mcpbus_worker_call_seconds_count{pool="kit-python",tool="kit_echo"}"#,
            2.0,
        ),
        (r#"mcpbus_worker_in_flight{pool="kit-python"}"#, 0.0),
    ] {
        // prometheus_client writes labels sorted by name.
        let got: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} missing from:\n{text}"));
        assert_eq!(got, want, "{series}");
    }
}
