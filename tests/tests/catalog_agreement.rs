//! Every gateway builds the same catalogue from the registry, so `tools/list` (every page)
//! is identical on every node, and replicas of a pool are one entry, not duplicates.

use harness::mcp::{stateless, Session};
use harness::{Cluster, DEMO_TOOLS};
use serde_json::{json, Value};
use std::time::Duration;

/// All pages of `tools/list` over the session lane, as returned.
async fn pages(session: &Session) -> Vec<Value> {
    let mut out = Vec::new();
    let mut params = json!({});
    loop {
        let result = session
            .request("tools/list", params)
            .await
            .unwrap()
            .response()
            .unwrap()["result"]
            .clone();
        let next = result["nextCursor"].as_str().map(str::to_owned);
        out.push(result);
        match next {
            Some(c) => params = json!({"cursor": c}),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_lists_the_same_pages() {
    let mut cluster = Cluster::start(3, &["--page-size", "2"]).await.unwrap();
    cluster.add_worker(&["demo", "--instance", "r1"]).unwrap();
    cluster.add_worker(&["demo", "--instance", "r2"]).unwrap();
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(20))
        .await
        .unwrap();
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let reference = pages(&session).await;
    assert_eq!(
        reference.len(),
        DEMO_TOOLS.len().div_ceil(2),
        "{} tools in pages of 2",
        DEMO_TOOLS.len()
    );
    let names: Vec<&str> = reference
        .iter()
        .flat_map(|p| p["tools"].as_array().unwrap())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names, DEMO_TOOLS,
        "two replicas list each tool once, sorted"
    );
    for url in &urls[1..] {
        assert_eq!(pages(&session.via(url)).await, reference, "{url} disagrees");
    }
    // A cursor from one node is valid on another.
    let cursor = reference[0]["nextCursor"].as_str().unwrap();
    let second = stateless(&urls[2], "tools/list", json!({"cursor": cursor}))
        .await
        .unwrap();
    assert_eq!(
        second.response().unwrap()["result"]["tools"],
        reference[1]["tools"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn listed_tools_carry_what_the_worker_registered() {
    let cluster = harness::demo_cluster(1, &[]).await;
    let url = &cluster.gateway_urls()[0];
    let list = stateless(url, "tools/list", json!({}))
        .await
        .unwrap()
        .response()
        .unwrap();
    let tools = list["result"]["tools"].as_array().unwrap();
    let add = tools.iter().find(|t| t["name"] == "add").unwrap();
    assert_eq!(add["title"], "Add two numbers");
    assert_eq!(add["inputSchema"]["required"], json!(["a", "b"]));
    assert_eq!(add["outputSchema"]["properties"]["sum"]["type"], "number");
    assert_eq!(add["annotations"]["idempotentHint"], true);
    let echo = tools.iter().find(|t| t["name"] == "echo").unwrap();
    assert_eq!(echo["inputSchema"]["properties"]["text"]["type"], "string");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_cursor_is_invalid_params() {
    let cluster = harness::demo_cluster(1, &[]).await;
    let s = Session::open(&cluster.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    let r = s
        .request("tools/list", json!({"cursor": "not-ours"}))
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some(-32602));
}
