//! A worker written in Python with the SDK in `worker/python` (built from PROTOCOL.md, on
//! `nats-py`) serves through the cluster: its tools, resource and prompt on both lanes and
//! through both gateways, with progress, logs, tool errors, argument validation,
//! cancellation from another node, and a graceful stop that takes it out of the catalogue.

use std::time::Duration;

use harness::mcp::{stateless, Session};
use harness::{start_python_example_worker, texts, Cluster, PY_EXAMPLE_TOOLS};
use serde_json::json;

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
    let pool = bus_schema::names::PoolName::new("py-example").unwrap();
    // Workers may answer pings only under the service-reply prefix (ADR 0013).
    let inbox = format!("{}.py", bus_schema::subjects::SERVICE_REPLY_PREFIX);
    let mut answers = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply(bus_schema::subjects::service_ping(&pool), inbox, "".into())
        .await
        .unwrap();
    let ping = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut answers),
    )
    .await
    .expect("the Python worker answers a ping")
    .unwrap();
    let ping: serde_json::Value = serde_json::from_slice(&ping.payload).unwrap();
    assert_eq!(ping["name"], "mcpbus-py-example", "{ping}");
    assert_eq!(ping["metadata"]["pool"], "py-example", "{ping}");

    // SIGTERM: drains, deregisters, exits 0; its tools leave the catalogue at once.
    worker.terminate();
    let status = worker.wait_exit(WAIT).expect("the worker exited");
    assert!(status.success(), "{status:?}\n{}", log_of(&c));
    c.wait_for_tools(&[], Duration::from_secs(3)).await.unwrap();
}
