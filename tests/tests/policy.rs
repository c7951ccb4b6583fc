//! The authorization policy (`--auth-policy`): lists show only what a principal may use, a
//! tool it may not use is answered exactly like one that does not exist, and a changed
//! policy file reaches every gateway of a running cluster, with `list_changed` to the
//! clients listening. (Per-principal differences need tokens: see `auth.rs`.)

use std::path::Path;
use std::time::Duration;

use harness::mcp::{listen, stateless, Resp, Session};
use harness::process::Proc;
use harness::{bin, Cluster};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn write_policy(path: &Path, policy: &Value) {
    // Written beside, then renamed: the gateway never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, policy.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn policy_cluster(gateways: usize, policy: &Value) -> (Cluster, std::path::PathBuf) {
    let mut c = Cluster::start(0, &[]).await.unwrap();
    let path = c.dir.path().join("policy.json");
    write_policy(&path, policy);
    for _ in 0..gateways {
        c.add_gateway(&["--auth-policy", path.to_str().unwrap()])
            .await
            .unwrap();
    }
    c.add_worker(&["demo"]).unwrap();
    (c, path)
}

async fn tool_names(url: &str) -> Vec<String> {
    harness::mcp::list_tool_names_stateless(url).await.unwrap()
}

/// Waits until `url` lists exactly `want`.
async fn wait_for_list(url: &str, want: &[&str]) {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let names = tool_names(url).await;
        if names == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{url} lists {names:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a client sees of a failed call: status, code, and message with the tool's name
/// taken out.
fn failure(r: &Resp, name: &str) -> (u16, Value, String) {
    let msg = r.response().unwrap();
    let error = &msg["error"];
    assert!(error.is_object(), "expected an error: {msg}");
    let text = error["message"]
        .as_str()
        .unwrap_or("")
        .replace(name, "<tool>");
    (r.status, error["code"].clone(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_show_only_what_the_policy_grants_and_hidden_tools_look_unknown() {
    let policy = json!({"rules": [{"allow": {"tools": ["echo", "who*"]}}]});
    let (c, _) = policy_cluster(2, &policy).await;
    let urls = c.gateway_urls();
    for url in &urls {
        wait_for_list(url, &["echo", "whoami"]).await;
    }
    // The session lane sees the same view.
    let session = Session::open(&urls[1], "2025-11-25").await.unwrap();
    let listed = session.request("tools/list", json!({})).await.unwrap();
    let listed = listed.response().unwrap();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "whoami"]);
    // A list filtered by policy may differ per caller: never cacheable as public.
    let list = stateless(&urls[0], "tools/list", json!({})).await.unwrap();
    assert_eq!(list.response().unwrap()["result"]["cacheScope"], "private");

    // A granted tool works.
    let ok = stateless(
        &urls[0],
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    )
    .await
    .unwrap();
    assert!(ok.response().unwrap().get("result").is_some());
    // `add` exists but is not granted: the same answer as a tool that never existed, on
    // both lanes.
    let args = json!({"a": 1, "b": 2});
    let hidden = stateless(
        &urls[0],
        "tools/call",
        json!({"name": "add", "arguments": args}),
    )
    .await
    .unwrap();
    let missing = stateless(
        &urls[0],
        "tools/call",
        json!({"name": "nosuch", "arguments": args}),
    )
    .await
    .unwrap();
    assert_eq!(failure(&hidden, "add"), failure(&missing, "nosuch"));
    let hidden = session
        .request("tools/call", json!({"name": "add", "arguments": args}))
        .await
        .unwrap();
    let missing = session
        .request("tools/call", json!({"name": "nosuch", "arguments": args}))
        .await
        .unwrap();
    assert_eq!(failure(&hidden, "add"), failure(&missing, "nosuch"));
    // The operator sees the refusals the client cannot tell apart: one per gateway here
    // (an unknown tool is not one).
    for gateway in &c.gateways {
        let denied = gateway
            .metric("mcpbus_policy_denied_total{method=\"tools/call\"}")
            .await;
        assert_eq!(denied, Some(1.0));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_change_reaches_a_running_cluster_and_a_broken_one_is_refused() {
    let (c, path) = policy_cluster(2, &json!({"rules": [{"allow": {"tools": ["echo"]}}]})).await;
    let urls = c.gateway_urls();
    for url in &urls {
        wait_for_list(url, &["echo"]).await;
    }
    let mut listening = listen(&urls[1], 7, json!({"toolsListChanged": true}))
        .await
        .unwrap();
    // The listen stream's first message acknowledges the subscription.
    let first = listening.next(WAIT).await.unwrap().expect("stream open");
    assert!(first.json().is_some());

    write_policy(
        &path,
        &json!({"rules": [{"allow": {"tools": ["echo"]}}, {"allow": {"tools": ["add"]}}]}),
    );
    let changed = loop {
        let e = listening.next(WAIT).await.unwrap().expect("stream open");
        if let Some(m) = e.json().filter(|m| m.get("method").is_some()) {
            break m;
        }
    };
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    for url in &urls {
        wait_for_list(url, &["add", "echo"]).await;
    }
    let sum = stateless(
        &urls[0],
        "tools/call",
        json!({"name": "add", "arguments": {"a": 1, "b": 2}}),
    )
    .await
    .unwrap();
    assert!(sum.response().unwrap().get("result").is_some());

    // A broken file does not open or close anything: the last good policy stays.
    std::fs::write(&path, b"{\"rules\": [{\"allow\": ").unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for url in &urls {
        assert_eq!(tool_names(url).await, ["add", "echo"]);
    }
    let log = c.gateways[0].proc.log_text();
    assert!(
        log.contains("keeping the previous authorization policy"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_with_a_broken_policy_does_not_start() {
    let c = Cluster::start(0, &[]).await.unwrap();
    for (name, text) in [
        ("missing.json", None),
        (
            "typo.json",
            Some(r#"{"rules": [{"allow": {"tool": ["echo"]}}]}"#),
        ),
        ("garbage.json", Some("rules: everything")),
    ] {
        let path = c.dir.path().join(name);
        if let Some(text) = text {
            std::fs::write(&path, text).unwrap();
        }
        let mut cmd = std::process::Command::new(bin("mcpbus-gateway"));
        cmd.args([
            "--listen",
            &format!("127.0.0.1:{}", harness::free_port()),
            "--nats",
            &c.nats.gateway_url(),
            "--auth-policy",
            path.to_str().unwrap(),
            // No metrics listener: the default port may be taken by another gateway here.
            "--metrics-listen",
            "off",
        ]);
        let mut gw = Proc::spawn(name, &mut cmd, c.dir.path()).unwrap();
        let status = gw.wait_exit(WAIT).expect("the gateway exits");
        assert!(!status.success());
        let log = gw.log_text();
        assert!(log.contains(path.to_str().unwrap()), "{name}: {log}");
    }
}
