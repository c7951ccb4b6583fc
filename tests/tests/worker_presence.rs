//! A worker that dies (kill -9) leaves every gateway's `tools/list` soon after its NATS
//! connection is gone, not a TTL after its last heartbeat (ADR 0029): the gateways probe its
//! liveness subscription and the server answers "no responders". Here every worker claims a
//! 120 s TTL and heartbeats every 30 s, and the gateways honour it, so that nothing but the
//! probe can explain the tools leaving within [`BOUND`]. No timing is asserted beyond that
//! generous bound; `mcpbus-bench presence` measures the times.
//!
//! The same for a worker of each SDK, and for a graceful exit; a live worker is not taken for
//! a dead one. That a record without `alive_subscription` (an older worker, the kit's raw
//! worker) is never probed, and keeps its TTL, is a unit test of `catalog/liveness.rs`.

use std::process::Command;
use std::time::Duration;

use harness::{node24, venv_python, workspace_root, Cluster, Proc, DEMO_TOOLS};

/// Far below the 120 s TTL: a worker gone within it was removed by the probe.
const BOUND: Duration = Duration::from_secs(30);

const GATEWAY_ARGS: [&str; 2] = ["--max-worker-ttl-secs", "120"];

const LONG_TTL: [&str; 4] = ["--heartbeat-ms", "30000", "--ttl-ms", "120000"];

/// Both gateways list `tools`, and still do a few probe rounds later.
async fn listed_and_kept(c: &Cluster, tools: &[&str]) {
    c.wait_for_tools(tools, BOUND).await.unwrap();
    // Three rounds of probes of a live worker: nothing may take it for a dead one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.wait_for_tools(tools, Duration::ZERO).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_rust_worker_leaves_both_gateways_long_before_its_ttl() {
    let mut c = Cluster::start(2, &GATEWAY_ARGS).await.unwrap();
    let mut args = vec!["demo", "--instance", "doomed"];
    args.extend(LONG_TTL);
    let w = c.add_worker(&args).unwrap();
    listed_and_kept(&c, &DEMO_TOOLS).await;

    c.workers[w].kill9();
    c.wait_for_tools(&[], BOUND).await.unwrap();
    let noticed = c
        .gateways
        .iter()
        .filter(|g| {
            g.proc
                .log_text()
                .contains("worker's connection is gone (no responders")
        })
        .count();
    assert!(noticed >= 1, "no gateway says it removed the worker");

    // A replacement comes back at once (a new record), and its graceful exit removes it too.
    let mut args = vec!["demo", "--instance", "next"];
    args.extend(LONG_TTL);
    let w = c.add_worker(&args).unwrap();
    c.wait_for_tools(&DEMO_TOOLS, BOUND).await.unwrap();
    c.workers[w].terminate();
    c.wait_for_tools(&[], BOUND).await.unwrap();
    let status = c.workers[w].wait_exit(BOUND).expect("the worker exits");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_python_worker_leaves_both_gateways_long_before_its_ttl() {
    let c = Cluster::start(2, &GATEWAY_ARGS).await.unwrap();
    // The SDK's example worker, with a long TTL and rare beats.
    let program = format!(
        "import runpy, sys\n\
         sys.argv = ['example_worker', '--nats', {url:?}, '--instance', 'py1']\n\
         example = runpy.run_path({path:?}, run_name='example')\n\
         example['worker'].heartbeat = 30.0\n\
         example['worker'].ttl = 120.0\n\
         example['main']()\n",
        url = c.nats.worker_url("py-example"),
        path = workspace_root()
            .join("worker/python/examples/example_worker.py")
            .to_string_lossy()
            .into_owned(),
    );
    let mut cmd = Command::new(venv_python());
    cmd.args(["-c", &program])
        .env("PYTHONPATH", workspace_root().join("worker/python/src"));
    let mut worker = Proc::spawn("py-worker", &mut cmd, c.dir.path()).unwrap();
    listed_and_kept(&c, &harness::PY_EXAMPLE_TOOLS).await;
    worker.kill9();
    c.wait_for_tools(&[], BOUND).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_typescript_worker_leaves_both_gateways_long_before_its_ttl() {
    let c = Cluster::start(2, &GATEWAY_ARGS).await.unwrap();
    let sdk = workspace_root().join("worker/typescript/dist/src/index.js");
    assert!(
        sdk.exists(),
        "the TypeScript SDK is not built: run scripts/test.sh"
    );
    let script = c.dir.path().join("presence-worker.mjs");
    std::fs::write(
        &script,
        format!(
            "import {{ defineTool, Worker, z }} from {sdk:?};\n\
             const worker = new Worker({{ pool: 'ts-presence', heartbeatMs: 30000, ttlMs: 120000 }});\n\
             worker.tool(defineTool({{ name: 'ts_presence', description: 'Says hi.', input: z.object({{}}) }},\n\
               async () => 'hi'));\n\
             await worker.run();\n\
             process.exit(0);\n",
            sdk = sdk.to_string_lossy()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(node24());
    cmd.arg(&script)
        .env("MCPBUS_NATS_URL", c.nats.worker_url("ts-presence"));
    let mut worker = Proc::spawn("ts-worker", &mut cmd, c.dir.path()).unwrap();
    listed_and_kept(&c, &["ts_presence"]).await;
    worker.kill9();
    c.wait_for_tools(&[], BOUND).await.unwrap();
}
