//! Resources, resource templates, prompts and completion, served by a worker over the bus
//! and aggregated by every gateway, on both lanes.

use std::time::Duration;

use harness::mcp::{stateless, Session};
use harness::Cluster;
use serde_json::json;

async fn cluster() -> Cluster {
    let mut c = Cluster::start(2, &["--page-size", "2"]).await.unwrap();
    c.add_worker(&["conformance"]).unwrap();
    c.wait_for_tools(&harness::CONFORMANCE_TOOLS, Duration::from_secs(20))
        .await
        .unwrap();
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_reads_and_prompts_go_to_the_owning_worker_on_both_lanes() {
    let c = cluster().await;
    let urls = c.gateway_urls();
    let s = Session::open(&urls[0], "2025-11-25").await.unwrap();

    // Paginated lists (5 prompts in pages of 2), continued through the other node.
    let first = s
        .request("prompts/list", json!({}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_eq!(first["result"]["prompts"].as_array().unwrap().len(), 2);
    let cursor = first["result"]["nextCursor"].as_str().unwrap();
    let second = s
        .via(&urls[1])
        .request("prompts/list", json!({"cursor": cursor}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_eq!(second["result"]["prompts"].as_array().unwrap().len(), 2);
    let cursor = second["result"]["nextCursor"].as_str().unwrap();
    let third = s
        .request("prompts/list", json!({"cursor": cursor}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_eq!(third["result"]["prompts"].as_array().unwrap().len(), 1);
    assert!(third["result"]["nextCursor"].is_null());
    let resources = s
        .request("resources/list", json!({}))
        .await
        .unwrap()
        .response()
        .unwrap();
    let uris: Vec<&str> = resources["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["test://static-binary", "test://static-text"]);
    let templates = s
        .request("resources/templates/list", json!({}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        "test://template/{id}/data"
    );

    // Reads: fixed and template URIs, through either node.
    let text = s
        .via(&urls[1])
        .request("resources/read", json!({"uri": "test://static-text"}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_eq!(
        text["result"]["contents"][0]["text"],
        "This is the content of the static text resource."
    );
    let t = s
        .request("resources/read", json!({"uri": "test://template/42/data"}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert!(t["result"]["contents"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Data for ID: 42"));

    // Prompts, with required arguments checked.
    let p = s
        .request(
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "a", "arg2": "b"}}),
        )
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_eq!(
        p["result"]["messages"][0]["content"]["text"],
        "Prompt with arguments: arg1='a', arg2='b'"
    );
    let missing = s
        .request(
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "a"}}),
        )
        .await
        .unwrap();
    assert_eq!(missing.error_code(), Some(-32602));

    // Completion, routed by reference.
    let done = s.request("completion/complete", json!({"ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"}, "argument": {"name": "arg1", "value": "test"}})).await.unwrap().response().unwrap();
    assert_eq!(
        done["result"]["completion"]["values"],
        json!(["test1", "test2", "testing"])
    );

    // Stateless lane: the same, with caching hints.
    let r = stateless(
        &urls[1],
        "resources/read",
        json!({"uri": "test://static-binary"}),
    )
    .await
    .unwrap()
    .response()
    .unwrap();
    assert!(r["result"]["contents"][0]["blob"].is_string());
    assert_eq!(r["result"]["resultType"], "complete");
    assert!(r["result"]["ttlMs"].is_u64());
    let l = stateless(&urls[0], "prompts/list", json!({}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_eq!(l["result"]["cacheScope"], "public");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_resource_gets_each_revisions_error_code() {
    let c = cluster().await;
    let url = &c.gateway_urls()[0];
    let s = Session::open(url, "2025-11-25").await.unwrap();
    let r = s
        .request("resources/read", json!({"uri": "test://nope"}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_eq!(
        r["error"]["code"], -32002,
        "2025 revisions: resource not found"
    );
    assert_eq!(r["error"]["data"]["uri"], "test://nope");
    let r = stateless(url, "resources/read", json!({"uri": "test://nope"}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_eq!(r["error"]["code"], -32602, "2026-07-28: invalid params");
    assert_eq!(r["error"]["data"]["uri"], "test://nope");
    let r = s
        .request("prompts/get", json!({"name": "nope"}))
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some(-32602));
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_updates_reach_only_subscribed_sessions() {
    use bus_schema::messages::BroadcastKind;

    let c = cluster().await;
    let urls = c.gateway_urls();
    let uri = "test://static-text";
    let subscriber = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let bystander = Session::open(&urls[1], "2025-11-25").await.unwrap();
    // Streams opened before subscribing still deliver: subscriptions are read per update.
    let mut sub_stream = subscriber.via(&urls[1]).get_stream(None).await.unwrap();
    let mut other_stream = bystander.get_stream(None).await.unwrap();
    sub_stream.next(Duration::from_secs(10)).await.unwrap();
    other_stream.next(Duration::from_secs(10)).await.unwrap();
    let ok = subscriber
        .request("resources/subscribe", json!({"uri": uri}))
        .await
        .unwrap();
    assert_eq!(ok.response().unwrap()["result"], json!({}));

    let update = || {
        c.nats
            .publish_broadcast(BroadcastKind::ResourceUpdated { uri: uri.into() })
    };
    update().await;
    let got = sub_stream
        .next(Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    let msg = got.json().unwrap();
    assert_eq!(msg["method"], "notifications/resources/updated");
    assert_eq!(msg["params"]["uri"], uri);
    assert!(
        other_stream
            .next(Duration::from_millis(1500))
            .await
            .is_err(),
        "not subscribed: nothing"
    );

    subscriber
        .request("resources/unsubscribe", json!({"uri": uri}))
        .await
        .unwrap();
    update().await;
    assert!(
        sub_stream.next(Duration::from_millis(1500)).await.is_err(),
        "unsubscribed: nothing"
    );
}
