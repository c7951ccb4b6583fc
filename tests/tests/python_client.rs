//! The real Python MCP SDK (`mcp==2.3.0`) lists and calls tools through the cluster, in
//! `auto` mode (negotiates 2026-07-28, stateless lane) and `legacy` mode (2025-11-25,
//! session lane), through each gateway.

use std::path::PathBuf;
use std::time::Duration;

use harness::{demo_cluster, workspace_root};
use serde_json::{json, Value};

fn python() -> PathBuf {
    let path = std::env::var("MCPBUS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/test.sh, which creates the venv with mcp==2.3.0",
        path.display()
    );
    path
}

async fn run_client(url: &str, mode: &str) -> Value {
    let script = workspace_root().join("tests/clients/py_client.py");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(python())
            .arg(script)
            .args([url, mode])
            .output(),
    )
    .await
    .expect("python client finished in time")
    .expect("python client ran");
    assert!(
        out.status.success(),
        "python client ({mode}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client printed JSON")
}

fn check(seen: &Value, version: &str) {
    assert_eq!(seen["protocol_version"], version, "{seen}");
    assert_eq!(seen["tools"], json!(harness::DEMO_TOOLS));
    assert_eq!(seen["echo"], json!(["hello from python"]));
    assert_eq!(seen["echo_is_error"], false);
    assert_eq!(seen["add_structured"], json!({"sum": 5.0}));
    assert_eq!(seen["fail_is_error"], true);
    assert_eq!(seen["fail_text"], json!(["boom"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_in_auto_mode_speaks_2026_07_28() {
    let cluster = demo_cluster(2, &[]).await;
    for url in cluster.gateway_urls() {
        check(&run_client(&url, "auto").await, "2026-07-28");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_in_legacy_mode_speaks_2025_11_25() {
    let cluster = demo_cluster(2, &[]).await;
    for url in cluster.gateway_urls() {
        check(&run_client(&url, "legacy").await, "2025-11-25");
    }
}
