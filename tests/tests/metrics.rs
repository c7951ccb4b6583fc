//! `/metrics` exposes what a ServiceMonitor scrapes: requests, call outcomes, open streams,
//! catalogue size, store usage, in the Prometheus text format.

use std::time::Duration;

use harness::mcp::{stateless, Session};
use harness::{demo_cluster, DEMO_TOOLS};
use serde_json::json;

async fn scrape(url: &str) -> String {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The value of the sample of `name` whose labels are exactly `labels` (in any order).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    text.lines()
        .find_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let inner = series
                .strip_prefix(name)?
                .strip_prefix('{')?
                .strip_suffix('}')?;
            let mut got: Vec<String> = inner.split(',').map(str::to_owned).collect();
            got.sort();
            (got == want).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("{name}{labels:?} missing from:\n{text}"))
}

/// Every metric of `text` is listed in the chart's `ci/metric-names.txt`, with its type: the
/// dashboard and alerts are checked against that list, so it must not fall behind the code.
fn assert_listed(text: &str) {
    let listed = std::fs::read_to_string(
        harness::workspace_root().join("deploy/helm/mcpbus/ci/metric-names.txt"),
    )
    .unwrap();
    let listed: Vec<(&str, &str)> = listed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap(), f.next().unwrap())
        })
        .collect();
    for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').unwrap();
        assert!(
            listed.contains(&(name, kind)),
            "{name} ({kind}) is served but not listed in metric-names.txt"
        );
    }
}

fn calls<'a>(tool: &'a str, outcome: &'a str) -> [(&'a str, &'a str); 3] {
    [("pool", "demo"), ("tool", tool), ("outcome", outcome)]
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
    assert_eq!(
        sample(&text, "mcpbus_tool_calls_total", &calls("echo", "result")),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "mcpbus_tool_calls_total",
            &calls("fail", "tool_error")
        ),
        1.0
    );
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

/// A scripted run, counted: each call once, under its pool, tool and outcome, on both lanes,
/// with its time split into queue wait and run time; the pool's workers and queue; the bus
/// connection; a broadcast stored, delivered, and replayed on resume; a gone pool's call.
#[tokio::test(flavor = "multi_thread")]
async fn tool_calls_are_counted_once_by_pool_tool_and_outcome() {
    let mut cluster = demo_cluster(1, &[]).await;
    let url = cluster.gateway_urls()[0].clone();
    let base = cluster.gateways[0].metrics_url();
    let session = Session::open(&url, "2025-11-25").await.unwrap();
    let mut stream = session.get_stream(None).await.unwrap();
    let priming = stream.next(Duration::from_secs(10)).await.unwrap().unwrap();
    for _ in 0..3 {
        session.call("echo", json!({"text": "x"})).await.unwrap();
    }
    let stateless = stateless(
        &url,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "y"}}),
    )
    .await
    .unwrap();
    assert!(stateless.response().unwrap()["result"].is_object());
    session.call("fail", json!({})).await.unwrap();
    // `sleep` declares a 3 s timeout.
    let slept = session
        .request(
            "tools/call",
            json!({"name": "sleep", "arguments": {"ms": 3500}}),
        )
        .await
        .unwrap();
    assert!(
        slept.response().unwrap()["error"].is_object(),
        "{:?}",
        slept.messages()
    );
    session
        .call("announce", json!({"level": "info", "text": "hello"}))
        .await
        .unwrap();

    let text = scrape(&base).await;
    let count = |tool, outcome| sample(&text, "mcpbus_tool_calls_total", &calls(tool, outcome));
    assert_eq!(count("echo", "result"), 4.0, "both lanes");
    assert_eq!(count("fail", "tool_error"), 1.0);
    assert_eq!(count("sleep", "timeout"), 1.0);
    assert_eq!(count("announce", "result"), 1.0);
    for (tool, n) in [("echo", 4.0), ("sleep", 1.0)] {
        let labels = [("pool", "demo"), ("tool", tool)];
        for part in ["queue", "run"] {
            let name = format!("mcpbus_tool_call_{part}_seconds_count");
            assert_eq!(sample(&text, &name, &labels), n, "{name} {tool}");
        }
        assert_eq!(sample(&text, "mcpbus_tool_call_seconds_count", &labels), n);
    }
    assert_eq!(
        sample(&text, "mcpbus_pool_workers", &[("pool", "demo")]),
        1.0
    );
    assert_eq!(value(&text, "mcpbus_nats_connected "), 1.0);
    let kind = [("kind", "message")];
    assert_eq!(
        sample(&text, "mcpbus_broadcasts_published_total", &kind),
        1.0
    );
    // The announcement reached the open stream (delivered once).
    let mut delivered = 0;
    while let Ok(Some(e)) = stream.next(Duration::from_secs(2)).await {
        delivered += usize::from(e.data.contains("notifications/message"));
    }
    assert_eq!(delivered, 1);
    assert_eq!(
        sample(
            &scrape(&base).await,
            "mcpbus_broadcast_deliveries_total",
            &kind
        ),
        1.0
    );

    // Resuming from the priming event replays it.
    drop(stream);
    let mut resumed = session.get_stream(priming.id.as_deref()).await.unwrap();
    while let Ok(Some(_)) = resumed.next(Duration::from_secs(2)).await {}
    let text = scrape(&base).await;
    assert_listed(&text);
    assert_eq!(
        sample(
            &text,
            "mcpbus_stream_resumes_total",
            &[("kind", "standalone")]
        ),
        1.0
    );
    assert!(
        sample(
            &text,
            "mcpbus_replayed_events_total",
            &[("kind", "standalone")]
        ) >= 1.0
    );

    // The queue is sampled every 15 s; it is empty.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(&base).await;
        if text.contains("mcpbus_pool_queue_depth{pool=\"demo\"}") {
            assert_eq!(
                sample(&text, "mcpbus_pool_queue_depth", &[("pool", "demo")]),
                0.0
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no queue sample:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The pool's last worker leaves: it shows 0 workers, and a call is counted `no_worker`.
    cluster.workers[0].terminate();
    cluster.workers[0].wait_exit(Duration::from_secs(20));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(&base).await;
        if sample(&text, "mcpbus_pool_workers", &[("pool", "demo")]) == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker is still counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = session
        .request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        )
        .await
        .unwrap();
    assert!(refused.response().unwrap()["error"].is_object());
    assert_eq!(count_now(&base, "echo", "no_worker").await, 1.0);
}

async fn count_now(base: &str, tool: &str, outcome: &str) -> f64 {
    sample(
        &scrape(base).await,
        "mcpbus_tool_calls_total",
        &calls(tool, outcome),
    )
}

/// A Rust SDK worker serves its own metrics (`--metrics-listen`): its calls by tool and
/// outcome, their run time, and nothing running once they are done.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_serves_its_own_metrics() {
    let mut cluster = demo_cluster(1, &[]).await;
    let port = harness::free_port();
    let addr = format!("127.0.0.1:{port}");
    cluster
        .add_worker(&[
            "--metrics-listen",
            &addr,
            "--pool",
            "wm",
            "demo",
            "--prefix",
            "wm_",
        ])
        .unwrap();
    let prefixed: Vec<String> = DEMO_TOOLS.iter().map(|t| format!("wm_{t}")).collect();
    let mut all: Vec<&str> = DEMO_TOOLS.to_vec();
    all.extend(prefixed.iter().map(String::as_str));
    cluster
        .wait_for_tools(&all, Duration::from_secs(20))
        .await
        .unwrap();
    let session = Session::open(&cluster.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    for _ in 0..2 {
        session.call("wm_echo", json!({"text": "x"})).await.unwrap();
    }
    session.call("wm_fail", json!({})).await.unwrap();
    let text = scrape(&format!("http://{addr}/metrics")).await;
    let worker = |tool, outcome| {
        sample(
            &text,
            "mcpbus_worker_calls_total",
            &[("pool", "wm"), ("tool", tool), ("outcome", outcome)],
        )
    };
    assert_eq!(worker("wm_echo", "result"), 2.0);
    assert_eq!(worker("wm_fail", "tool_error"), 1.0);
    let labels = [("pool", "wm"), ("tool", "wm_echo")];
    assert_eq!(
        sample(&text, "mcpbus_worker_call_seconds_count", &labels),
        2.0
    );
    assert_eq!(
        sample(&text, "mcpbus_worker_in_flight", &[("pool", "wm")]),
        0.0
    );
    assert_listed(&text);
}
