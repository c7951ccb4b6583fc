//! Nobody takes a name another pool serves (issue 13, ADR 0015): when a second pool
//! registers the demo tools under the same names, and a name that sorts first, calls keep
//! going to the pool that registered them first, on every gateway (one of them started after
//! both pools, from the KV state alone); the conflict is on `/metrics`; when the first pool
//! stops, the second gets the names; a rolling upgrade of the first pool does not hand them
//! over; and a prefix serves both.

use std::time::Duration;

use harness::mcp::stateless;
use harness::{Cluster, DEMO_TOOLS};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// The instance that ran a `whoami` call through `url`.
async fn whoami(url: &str) -> String {
    let r = stateless(
        url,
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
    )
    .await
    .unwrap();
    let result = r.response().unwrap()["result"].clone();
    result["structuredContent"]["instance"]
        .as_str()
        .unwrap_or_else(|| panic!("no instance in {result}"))
        .to_owned()
}

/// The current `mcpbus_catalog_conflicts{kind="tool"}` of a gateway.
async fn tool_conflicts(metrics_url: &str) -> Option<f64> {
    let text = reqwest::get(metrics_url).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("mcpbus_catalog_conflicts{kind=\"tool\"} ")
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Waits until every gateway counts `want` tool conflicts.
async fn wait_conflicts(c: &Cluster, want: f64) {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let mut seen = Vec::new();
        for g in &c.gateways {
            seen.push(tool_conflicts(&g.metrics_url()).await);
        }
        if seen.iter().all(|s| *s == Some(want)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "gateways count {seen:?} tool conflicts, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until a `whoami` through every gateway runs on `instance`.
async fn wait_served_by(c: &Cluster, instance: &str) {
    let until = tokio::time::Instant::now() + WAIT;
    for url in c.gateway_urls() {
        loop {
            let ran = whoami(&url).await;
            if ran == instance {
                break;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{url} still routes whoami to {ran}, not {instance}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_that_registered_a_name_first_keeps_it_until_it_leaves() {
    let mut c = Cluster::start(2, &[]).await.unwrap();
    let first = c
        .add_worker(&["--pool", "demo", "--instance", "first-1", "demo"])
        .unwrap();
    c.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    wait_served_by(&c, "first-1").await;

    // A later pool registers the same names; `aaa` sorts before `demo`, which used to win.
    c.add_worker(&["--pool", "aaa", "--instance", "late-1", "demo"])
        .unwrap();
    wait_conflicts(&c, DEMO_TOOLS.len() as f64).await;
    // A gateway started now sees only the current KV values, and agrees.
    c.add_gateway(&[]).await.unwrap();
    wait_conflicts(&c, DEMO_TOOLS.len() as f64).await;
    c.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    for url in c.gateway_urls() {
        for _ in 0..5 {
            assert_eq!(whoami(&url).await, "first-1", "{url} gave the name away");
        }
    }
    // The operator lists the same conflicts from the registry.
    let listed = std::process::Command::new(harness::bin("mcpbusctl"))
        .args(["conflicts", "--nats", &c.nats.url()])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for tool in DEMO_TOOLS {
        let line = format!("tool {tool}: kept by demo, refused to aaa");
        assert!(
            listed.lines().any(|l| l == line),
            "{line:?} not in:\n{listed}"
        );
    }
    let log = c.gateways[0].proc.log_text();
    let logged = log
        .lines()
        .filter(|l| l.contains("registered first") && l.contains("echo"))
        .collect::<Vec<_>>();
    assert!(
        matches!(logged.as_slice(), [line] if line.contains("demo") && line.contains("aaa")),
        "the conflict over echo is logged once, naming both pools:\n{log}"
    );

    // The first pool leaves: the names go to the next pool, and the conflict ends.
    c.workers[first].terminate();
    c.workers[first]
        .wait_exit(WAIT)
        .expect("the first pool stops");
    wait_served_by(&c, "late-1").await;
    wait_conflicts(&c, 0.0).await;
    c.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_serves_both_pools_without_a_conflict() {
    let mut c = Cluster::start(1, &[]).await.unwrap();
    c.add_worker(&["--pool", "demo", "--instance", "first-1", "demo"])
        .unwrap();
    c.add_worker(&[
        "--pool",
        "aaa",
        "--instance",
        "late-1",
        "demo",
        "--prefix",
        "b_",
    ])
    .unwrap();
    let mut all: Vec<String> = DEMO_TOOLS.iter().map(|t| t.to_string()).collect();
    all.extend(DEMO_TOOLS.iter().map(|t| format!("b_{t}")));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    c.wait_for_tools(&all, WAIT).await.unwrap();
    wait_conflicts(&c, 0.0).await;
    assert_eq!(whoami(&c.gateway_urls()[0]).await, "first-1");
}

/// A pool replaced replica by replica (a rolling upgrade) keeps its names: a new replica
/// dates from its pool's earliest live instance, not from its own start.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_upgrade_keeps_the_pools_names() {
    let mut c = Cluster::start(1, &[]).await.unwrap();
    let old = c
        .add_worker(&["--pool", "demo", "--instance", "old-1", "demo"])
        .unwrap();
    c.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    c.add_worker(&["--pool", "aaa", "--instance", "late-1", "demo"])
        .unwrap();
    wait_conflicts(&c, DEMO_TOOLS.len() as f64).await;

    // The new replica starts after `aaa`, while the old one still serves; then the old stops.
    c.add_worker(&["--pool", "demo", "--instance", "new-1", "demo"])
        .unwrap();
    // Both demo replicas are live once calls reach the new one too.
    let url = c.gateway_urls()[0].clone();
    let until = tokio::time::Instant::now() + WAIT;
    while whoami(&url).await != "new-1" {
        assert!(tokio::time::Instant::now() < until, "new-1 never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.workers[old].terminate();
    c.workers[old]
        .wait_exit(WAIT)
        .expect("the old replica stops");
    wait_served_by(&c, "new-1").await;
    for _ in 0..5 {
        assert_eq!(
            whoami(&url).await,
            "new-1",
            "the upgrade gave the names away"
        );
    }
    wait_conflicts(&c, DEMO_TOOLS.len() as f64).await;
}
