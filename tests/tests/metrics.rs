//! `/metrics` exposes what a ServiceMonitor scrapes: requests, call outcomes, open streams,
//! catalogue size, store usage, in the Prometheus text format.

use harness::mcp::Session;
use harness::{demo_cluster, DEMO_TOOLS};
use serde_json::json;

async fn scrape(url: &str) -> String {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_calls_streams_and_tools() {
    let cluster = demo_cluster(1, &[]).await;
    let base = cluster.gateways[0].metrics_url();
    let session = Session::open(&cluster.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    session.call("echo", json!({"text": "x"})).await.unwrap();
    session.call("fail", json!({})).await.unwrap();
    let mut stream = session.get_stream(None).await.unwrap();
    stream
        .next(std::time::Duration::from_secs(10))
        .await
        .unwrap();

    let text = scrape(&base).await;
    assert_eq!(
        value(&text, "mcpbus_catalog_tools "),
        DEMO_TOOLS.len() as f64
    );
    assert!(
        value(
            &text,
            "mcpbus_requests_total{lane=\"session\",method=\"tools/call\"} "
        ) >= 2.0
    );
    assert!(value(&text, "mcpbus_tool_calls_total{outcome=\"result\"} ") >= 1.0);
    assert!(value(&text, "mcpbus_tool_calls_total{outcome=\"tool_error\"} ") >= 1.0);
    assert_eq!(
        value(&text, "mcpbus_open_streams{kind=\"standalone\"} "),
        1.0
    );
    // What the stores a client can fill hold, beside their limits (sampled at start and
    // every 15 s): the session record, at least, is stored.
    for store in ["calls", "events", "sessions", "tasks"] {
        assert!(
            value(
                &text,
                &format!("mcpbus_store_max_bytes{{store=\"{store}\"}} ")
            ) > 0.0
        );
    }
    assert!(value(&text, "mcpbus_store_messages{store=\"sessions\"} ") >= 0.0);
    drop(stream);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let text = scrape(&base).await;
    assert_eq!(
        value(&text, "mcpbus_open_streams{kind=\"standalone\"} "),
        0.0,
        "a closed stream is no longer counted"
    );
}

/// The MCP port serves MCP only: `/metrics` is on its own listener (`--metrics-listen`).
#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_served_on_their_own_listener_not_the_mcp_port() {
    let cluster = harness::Cluster::start(1, &[]).await.unwrap();
    let gw = &cluster.gateways[0];
    let on_mcp = reqwest::get(format!("{}/metrics", gw.base_url()))
        .await
        .unwrap();
    assert_eq!(on_mcp.status(), 404, "/metrics answered on the MCP port");
    let text = scrape(&gw.metrics_url()).await;
    assert!(text.contains("mcpbus_open_connections"), "{text}");
    let elsewhere = reqwest::get(format!("http://127.0.0.1:{}/mcp", gw.metrics_port))
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404, "/mcp answered on the metrics port");
}
