//! A worker asks the client (sampling, elicitation) on the stream of the originating request;
//! the client's answer may be POSTed to any gateway and still reaches the waiting worker.

use std::time::Duration;

use harness::mcp::Session;
use harness::{texts, Cluster, CONFORMANCE_TOOLS};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

async fn cluster() -> Cluster {
    harness::conformance_cluster(2, &[]).await
}

/// A session that declares sampling and elicitation.
async fn capable_session(url: &str) -> Session {
    let capabilities = json!({"sampling": {}, "elicitation": {}});
    Session::open_declaring(url, "2025-11-25", capabilities)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_to_a_sampling_request_may_arrive_at_another_node() {
    let c = cluster().await;
    let urls = c.gateway_urls();
    let session = capable_session(&urls[0]).await;
    let mut stream = session
        .stream_request(
            "tools/call",
            json!({"name": "test_sampling", "arguments": {"prompt": "hi"}}),
        )
        .await
        .unwrap();
    let request = loop {
        let e = stream.next(WAIT).await.unwrap().expect("stream open");
        if let Some(m) = e.json() {
            if m["method"] == "sampling/createMessage" {
                break m;
            }
        }
    };
    assert_eq!(request["params"]["messages"][0]["content"]["text"], "hi");
    assert_eq!(request["params"]["maxTokens"], 100);
    // Answer through the other gateway.
    let answer = harness::mcp::sampled(&request["id"], "from the model");
    let r = session.via(&urls[1]).post(&answer).await.unwrap();
    assert_eq!(r.status, 202);
    let rest = stream.collect(WAIT).await.unwrap();
    let response = rest
        .iter()
        .filter_map(|e| e.json())
        .find(|m| m["id"] == 42)
        .expect("final response");
    assert_eq!(texts(&response["result"]), ["LLM response: from the model"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_the_capability_is_never_asked() {
    let c = cluster().await;
    let session = Session::open(&c.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    let r = session
        .call("test_elicitation", json!({"message": "who are you?"}))
        .await
        .unwrap();
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(texts(&r["result"])[0].contains("did not declare the \"elicitation\" capability"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stateless_lane_answers_a_missing_capability_with_32021_and_400() {
    let c = cluster().await;
    let r = harness::mcp::stateless(
        &c.gateway_urls()[1],
        "tools/call",
        json!({"name": "test_missing_capability", "arguments": {}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    let error = &r.response().unwrap()["error"];
    assert_eq!(error["code"], -32021);
    assert!(
        error["data"]["requiredCapabilities"]["sampling"].is_object(),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_only_gateway_says_at_once_that_it_cannot_carry_the_question() {
    let mut c = Cluster::start(1, &["--json-tool-calls"]).await.unwrap();
    c.add_worker(&["conformance"]).unwrap();
    c.wait_for_tools(&CONFORMANCE_TOOLS, WAIT).await.unwrap();
    let session = capable_session(&c.gateway_urls()[0]).await;
    let r = session
        .call("test_elicitation", json!({"message": "who are you?"}))
        .await
        .unwrap();
    assert_eq!(r["error"]["code"], -32603, "{r}");
    assert_eq!(r["error"]["data"]["reason"], "needs_stream");
}
