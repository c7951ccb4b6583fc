//! Tool calls end to end on both MCP lanes, through every gateway, served by a worker over
//! JetStream; and the outcomes a call can have (result, tool error, unknown tool, timeout).

use std::time::Duration;

use harness::mcp::{post, stateless, Session};
use harness::{demo_cluster, texts, Cluster};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn calls_work_on_both_lanes_through_every_node() {
    let cluster = demo_cluster(2, &[]).await;
    for url in cluster.gateway_urls() {
        let session = Session::open(&url, "2025-11-25").await.unwrap();
        let echo = session
            .call("echo", json!({"text": "session lane"}))
            .await
            .unwrap();
        assert_eq!(texts(&echo["result"]), ["session lane"]);
        assert_eq!(echo["result"]["isError"], false);

        let r = stateless(
            &url,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "stateless lane"}}),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        let echo = r.response().unwrap();
        assert_eq!(texts(&echo["result"]), ["stateless lane"]);

        let add = session.call("add", json!({"a": 2, "b": 40})).await.unwrap();
        assert_eq!(add["result"]["structuredContent"], json!({"sum": 42.0}));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stateless_results_carry_result_type_and_cache_hints() {
    let cluster = demo_cluster(1, &[]).await;
    let url = &cluster.gateway_urls()[0];
    let discover = stateless(url, "server/discover", json!({}))
        .await
        .unwrap()
        .response()
        .unwrap();
    let d = &discover["result"];
    assert_eq!(d["resultType"], "complete");
    assert!(d["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("2026-07-28")));
    assert!(d["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("2025-11-25")));
    assert!(d["capabilities"]["tools"].is_object());
    assert_eq!(
        d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcpbus"
    );
    assert!(d["ttlMs"].as_u64().is_some());

    let list = stateless(url, "tools/list", json!({}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_eq!(list["result"]["resultType"], "complete");
    assert_eq!(list["result"]["cacheScope"], "public");
    assert!(list["result"]["ttlMs"].as_u64().is_some());

    let call = stateless(
        url,
        "tools/call",
        json!({"name": "add", "arguments": {"a": 1, "b": 1}}),
    )
    .await
    .unwrap()
    .response()
    .unwrap();
    assert_eq!(call["result"]["resultType"], "complete");
    assert_eq!(call["result"]["structuredContent"]["sum"], 2.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_tool_is_a_result_with_is_error() {
    let cluster = demo_cluster(1, &[]).await;
    let url = &cluster.gateway_urls()[0];
    let session = Session::open(url, "2025-06-18").await.unwrap();
    let r = session
        .call("fail", json!({"message": "disk on fire"}))
        .await
        .unwrap();
    assert_eq!(r["result"]["isError"], true);
    assert_eq!(texts(&r["result"]), ["disk on fire"]);
    // Arguments that do not fit the schema are a tool error the model can correct.
    let r = session.call("echo", json!({"wrong": 1})).await.unwrap();
    assert_eq!(r["result"]["isError"], true);
    assert!(texts(&r["result"])[0].contains("invalid arguments"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_tool_is_invalid_params_on_both_lanes() {
    let cluster = demo_cluster(1, &[]).await;
    let url = &cluster.gateway_urls()[0];
    let session = Session::open(url, "2025-11-25").await.unwrap();
    let r = session.call("no_such_tool", json!({})).await.unwrap();
    assert_eq!(r["error"]["code"], -32602);
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no_such_tool"));
    let r = stateless(
        url,
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    )
    .await
    .unwrap();
    assert_eq!(r.error_code(), Some(-32602));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_past_its_tool_timeout_says_it_timed_out_on_a_worker() {
    let cluster = demo_cluster(1, &[]).await;
    let session = Session::open(&cluster.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    // `sleep` declares a 3 s timeout; the worker would need 20 s.
    let r = session.call("sleep", json!({"ms": 20000})).await.unwrap();
    let error = &r["error"];
    assert_eq!(error["data"]["reason"], "timeout", "{r}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("timed out after 3.0 s") && message.contains("did not answer"),
        "{message}"
    );
    // A call inside the timeout is fine.
    let r = session.call("sleep", json!({"ms": 50})).await.unwrap();
    assert_eq!(texts(&r["result"]), ["slept 50 ms"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_without_a_live_worker_say_which_case_it_is() {
    let mut cluster = demo_cluster(1, &[]).await;
    let url = cluster.gateway_urls()[0].clone();
    let session = Session::open(&url, "2025-11-25").await.unwrap();
    cluster.workers[0].kill9();
    // Still listed (its heartbeat has not expired): the call waits in the queue, and the
    // timeout says nobody picked it up.
    let r = session.call("sleep", json!({"ms": 10})).await.unwrap();
    assert_eq!(r["error"]["data"]["reason"], "timeout", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no worker of pool \"demo\" picked the call up"),
        "{r}"
    );
    // Once expired, the gateway knows the pool is gone and says so at once.
    cluster
        .wait_for_tools(&[], Duration::from_secs(15))
        .await
        .unwrap();
    let r = session
        .call("echo", json!({"text": "anyone?"}))
        .await
        .unwrap();
    assert_eq!(r["error"]["data"]["reason"], "no_worker", "{r}");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no live worker"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_calls_are_sse_by_default_and_json_on_request() {
    let mut cluster = Cluster::start(1, &[]).await.unwrap();
    cluster.add_gateway(&["--json-tool-calls"]).await.unwrap();
    cluster.add_worker(&["demo"]).unwrap();
    cluster
        .wait_for_tools(&harness::DEMO_TOOLS, Duration::from_secs(20))
        .await
        .unwrap();
    let urls = cluster.gateway_urls();
    let s = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let msg = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}});
    let sse = s.post(&msg).await.unwrap();
    assert!(sse
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(sse.response().unwrap()["id"], 7);
    let json_resp = s.via(&urls[1]).post(&msg).await.unwrap();
    assert_eq!(json_resp.header("content-type"), Some("application/json"));
    assert_eq!(texts(&json_resp.response().unwrap()["result"]), ["x"]);
    // Notifications are accepted with 202 and no body.
    let note = post(
        &urls[0],
        &[("mcp-session-id", &s.id)],
        &json!({"jsonrpc": "2.0", "method": "notifications/whatever"}),
    )
    .await
    .unwrap();
    assert_eq!((note.status, note.body.as_str()), (202, ""));
}
