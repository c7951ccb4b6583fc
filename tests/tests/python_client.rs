//! The real Python MCP SDK (`mcp==2.3.0`) lists and calls tools through the cluster, in
//! `auto` mode (negotiates 2026-07-28, stateless lane) and `legacy` mode (2025-11-25,
//! session lane), through each gateway; and uses resources, prompts, completion, its own
//! elicitation, sampling and roots callbacks, and (auto mode) a task.

use std::path::PathBuf;
use std::time::Duration;

use harness::{demo_cluster, workspace_root, Cluster, CONFORMANCE_TOOLS};
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
    run_script("py_client.py", url, mode).await
}

async fn run_script(script: &str, url: &str, mode: &str) -> Value {
    let script = workspace_root().join("tests/clients").join(script);
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

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_uses_resources_prompts_callbacks_and_tasks_on_both_lanes() {
    let mut cluster = Cluster::start(2, &[]).await.unwrap();
    cluster.add_worker(&["conformance"]).unwrap();
    cluster
        .wait_for_tools(&CONFORMANCE_TOOLS, Duration::from_secs(20))
        .await
        .unwrap();
    let urls = cluster.gateway_urls();
    for (url, mode, version) in [
        (&urls[0], "legacy", "2025-11-25"),
        (&urls[1], "auto", "2026-07-28"),
    ] {
        let seen = run_script("py_features.py", url, mode).await;
        assert_eq!(seen["protocol_version"], version, "{seen}");
        assert_eq!(
            seen["resources"],
            json!(["test://static-binary", "test://static-text"])
        );
        assert_eq!(seen["templates"], json!(["test://template/{id}/data"]));
        assert_eq!(
            seen["read"],
            json!(["This is the content of the static text resource."])
        );
        assert_eq!(seen["prompts"].as_array().unwrap().len(), 5, "{seen}");
        assert_eq!(
            seen["prompt"],
            json!(["Prompt with arguments: arg1='a', arg2='b'"])
        );
        assert_eq!(seen["completion"], json!(["test1", "test2", "testing"]));
        // The client's own callbacks answered the worker's questions: on a session as server
        // requests, on 2026-07-28 as MRTR rounds.
        assert!(
            seen["elicited"][0]
                .as_str()
                .unwrap()
                .contains("py@example.com"),
            "{seen}"
        );
        assert_eq!(seen["sampled"], json!(["LLM response: sampled by python"]));
        assert_eq!(seen["roots"], json!(["Client roots: file:///py/root"]));
        if mode == "auto" {
            assert_eq!(seen["task"], json!(["py-task: computed in 1 s"]));
            assert_eq!(seen["tasks_created"], 1, "the call became a task");
        }
    }
}
