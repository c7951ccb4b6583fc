//! Drain over the bus (issue 14, PROTOCOL.md §4.3, ADR 0021): `mcpbusctl drain POOL/INSTANCE`
//! empties one replica, which leaves as on SIGTERM: the call it runs completes, its record
//! disappears, the process exits 0, and the other replica takes the new calls. The same for
//! a worker of each SDK: Rust, Python and TypeScript.

use std::process::Command;
use std::time::Duration;

use harness::mcp::stateless;
use harness::{ctl, node24, venv_python, workspace_root, Cluster, Proc, DEMO_TOOLS};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// Polls `mcpbusctl pools --json` until `pool` satisfies `done`.
async fn wait_for_pool(operator: &str, pool: &str, what: &str, done: impl Fn(&Value) -> bool) {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let pools = ctl::json(operator, &["pools"]).await;
        let found = pools
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pool"] == pool)
            .cloned()
            .unwrap_or(Value::Null);
        if done(&found) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{what} not seen within {WAIT:?}; {pool} is {found:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn instances(pool: &Value) -> Vec<String> {
    pool["instances"]
        .as_array()
        .map(|i| {
            i.iter()
                .map(|i| i["instance"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Drains `pool/instance` while it runs the call `tool(arguments)`, and checks that it left
/// cleanly: the call's result (returned), the drain command's word, the record gone, exit 0.
async fn drain_during_a_call(
    c: &Cluster,
    worker: &mut Proc,
    pool: &str,
    instance: &str,
    tool: &str,
    arguments: Value,
) -> Value {
    let operator = c.nats.operator_url();
    let url = c.gateway_urls()[0].clone();
    let tool = tool.to_owned();
    let call = tokio::spawn(async move {
        stateless(
            &url,
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        )
        .await
        .unwrap()
    });
    wait_for_pool(&operator, pool, "the call running", |p| {
        p["queue"]["ack_pending"] == 1
    })
    .await;

    let target = format!("{pool}/{instance}");
    let out = ctl::run(&operator, &["drain", &target]).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "drain failed: {}{said}\n{}",
        String::from_utf8_lossy(&out.stderr),
        worker.log_text()
    );
    assert!(
        said.starts_with(&format!("{target} drained and left")),
        "{said}"
    );

    // Gone from the registry when the command returned, and the process ended cleanly.
    wait_for_pool(&operator, pool, "the record gone", |p| {
        !instances(p).contains(&instance.to_owned())
    })
    .await;
    let status = worker.wait_exit(WAIT).expect("the drained worker exits");
    assert!(status.success(), "{status}:\n{}", worker.log_text());

    let reply = call.await.unwrap();
    let result = reply.response().unwrap()["result"].clone();
    assert!(
        result.is_object() && result["isError"] != true,
        "the running call did not complete: {}",
        reply.body
    );
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_empties_one_replica_and_the_other_takes_the_calls() {
    let mut c = Cluster::start(1, &[]).await.unwrap();
    let a = c.add_worker(&["demo", "--instance", "a"]).unwrap();
    c.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
    let operator = c.nats.operator_url();
    // Whether "b" is there or not, the running call is a's: it alone is up when the call is
    // queued, so it takes it. "b" joins while it runs.
    let url = c.gateway_urls()[0].clone();
    let call = tokio::spawn(async move {
        stateless(
            &url,
            "tools/call",
            json!({"name": "wait", "arguments": {"ms": 3000}}),
        )
        .await
        .unwrap()
    });
    wait_for_pool(&operator, "demo", "a's call running", |p| {
        p["queue"]["ack_pending"] == 1
    })
    .await;
    c.add_worker(&["demo", "--instance", "b"]).unwrap();
    wait_for_pool(&operator, "demo", "two replicas", |p| p["replicas"] == 2).await;

    let out = ctl::run(&operator, &["drain", "demo/a"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.starts_with("demo/a drained and left"), "{said}");
    let status = c.workers[a].wait_exit(WAIT).expect("a exits");
    assert!(status.success(), "{status}");
    let reply = call.await.unwrap();
    let result = &reply.response().unwrap()["result"];
    assert_eq!(
        result["structuredContent"]["instance"], "a",
        "{}",
        reply.body
    );
    wait_for_pool(&operator, "demo", "only b", |p| instances(p) == ["b"]).await;
    let url = &c.gateway_urls()[0];
    for _ in 0..5 {
        let r = stateless(
            url,
            "tools/call",
            json!({"name": "whoami", "arguments": {}}),
        )
        .await
        .unwrap();
        let ran = &r.response().unwrap()["result"]["structuredContent"]["instance"];
        assert_eq!(ran, "b", "{}", r.body);
    }

    // Nobody left to drain under that name; a wrong name is said so.
    let again = ctl::run(&operator, &["drain", "demo/a"]).await;
    assert!(!again.status.success());
    let err = String::from_utf8(again.stderr).unwrap();
    assert!(err.contains("no live instance demo/a"), "{err}");
    let bad = ctl::run(&operator, &["drain", "demo"]).await;
    assert!(!bad.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_worker_drains_when_asked() {
    let c = Cluster::start(1, &[]).await.unwrap();
    let mut cmd = Command::new(venv_python());
    cmd.arg(workspace_root().join("worker/python/examples/example_worker.py"))
        .args([
            "--nats",
            &c.nats.worker_url("py-example"),
            "--instance",
            "py1",
        ])
        // This tree's SDK, whatever the venv has installed.
        .env("PYTHONPATH", workspace_root().join("worker/python/src"));
    let mut worker = Proc::spawn("py-worker", &mut cmd, c.dir.path()).unwrap();
    c.wait_for_tools(&harness::PY_EXAMPLE_TOOLS, WAIT)
        .await
        .unwrap();
    let result = drain_during_a_call(
        &c,
        &mut worker,
        "py-example",
        "py1",
        "py_countdown",
        json!({"n": 20, "interval_ms": 100}),
    )
    .await;
    assert_eq!(harness::texts(&result), ["liftoff"], "{result}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typescript_worker_drains_when_asked() {
    let c = Cluster::start(1, &[]).await.unwrap();
    let script = workspace_root().join("worker/typescript/dist/examples/example-worker.js");
    assert!(
        script.exists(),
        "the TypeScript SDK is not built: run scripts/test.sh"
    );
    let mut cmd = Command::new(node24());
    cmd.arg(script)
        .env("MCPBUS_NATS_URL", c.nats.worker_url("ts-example"))
        .env("MCPBUS_INSTANCE", "ts1");
    let mut worker = Proc::spawn("ts-worker", &mut cmd, c.dir.path()).unwrap();
    c.wait_for_tools(
        &["ts_add", "ts_countdown", "ts_fail", "ts_greet", "ts_whoami"],
        WAIT,
    )
    .await
    .unwrap();
    let result = drain_during_a_call(
        &c,
        &mut worker,
        "ts-example",
        "ts1",
        "ts_countdown",
        json!({"n": 20, "interval_ms": 100}),
    )
    .await;
    assert!(!harness::texts(&result).is_empty(), "{result}");
}
