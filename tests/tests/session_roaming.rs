//! Sessions live in JetStream KV, not in a gateway: any node continues any session.

use harness::mcp::Session;
use harness::{demo_cluster, texts};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_session_started_on_one_node_continues_on_another() {
    let cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let on_a = Session::open(&urls[0], version).await.unwrap();
        assert_eq!(
            on_a.version, version,
            "initialize negotiates the requested revision"
        );
        let on_b = on_a.via(&urls[1]);
        let echo = on_b
            .call("echo", json!({"text": format!("roam {version}")}))
            .await
            .unwrap();
        assert_eq!(texts(&echo["result"]), [format!("roam {version}")]);
        let ping = on_b.request("ping", json!({})).await.unwrap();
        assert_eq!(ping.status, 200);
        assert_eq!(ping.response().unwrap()["result"], json!({}));
        let list = on_b
            .request("tools/list", json!({}))
            .await
            .unwrap()
            .response()
            .unwrap();
        assert_eq!(
            list["result"]["tools"].as_array().unwrap().len(),
            harness::DEMO_TOOLS.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_revisions_negotiate_to_the_newest_session_revision() {
    let cluster = demo_cluster(1, &[]).await;
    let s = Session::open(&cluster.gateway_urls()[0], "2024-01-01")
        .await
        .unwrap();
    assert_eq!(s.version, "2025-11-25");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_session_is_gone_on_every_node() {
    let cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    let on_a = Session::open(&urls[0], "2025-11-25").await.unwrap();
    let on_b = on_a.via(&urls[1]);
    assert_eq!(on_b.delete().await.unwrap().status, 200);
    for s in [&on_a, &on_b] {
        let r = s.request("tools/list", json!({})).await.unwrap();
        assert_eq!(r.status, 404, "ended session must be 404 on {}", s.url);
    }
    assert_eq!(
        on_a.delete().await.unwrap().status,
        404,
        "second DELETE finds nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_outlives_the_node_that_created_it() {
    let mut cluster = demo_cluster(2, &[]).await;
    let urls = cluster.gateway_urls();
    let s = Session::open(&urls[0], "2025-11-25").await.unwrap();
    cluster.gateways[0].proc.kill9();
    let echo = s
        .via(&urls[1])
        .call("echo", json!({"text": "still here"}))
        .await
        .unwrap();
    assert_eq!(texts(&echo["result"]), ["still here"]);
}
