//! The container images, built and run (issue 17): each image starts as uid 65532 on a
//! read-only root filesystem with no shell; the compose cluster serves a real MCP client,
//! rides out `docker kill` of a NATS container under load, and drains a gateway on
//! `docker stop` while its resumable stream moves to the other gateway.
//!
//! `#[ignore]`d: they need a Docker daemon and images built from this checkout, which
//! `tests/images/run.sh` (run by scripts/test.sh) provides before running them with
//! `--ignored`; it says so loudly when no daemon can start.

use std::collections::BTreeMap;
use std::time::Duration;

use bus_schema::topology::CALLS_STREAM;
use harness::docker::{Compose, Container, Images};
use harness::load::Load;
use harness::mcp::{stateless, Session};
use harness::sse::Seen;
use harness::{free_port, texts, wait_ready, Nats, DEMO_TOOLS, PY_EXAMPLE_TOOLS};
use serde_json::{json, Value};

/// The user every image runs as: distroless's `nonroot`.
const NONROOT: &str = "65532:65532";
const WAIT: Duration = Duration::from_secs(30);
/// Steps of the resumable call that outlives a gateway.
const STEPS: u32 = 16;

/// Polls `check` every 200 ms until it is true, for at most `within`.
async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn assert_nonroot_read_only(what: &str, c: &Container) {
    assert_eq!(c.uid().unwrap(), 65532, "{what} runs as nonroot");
    assert!(
        c.read_only().unwrap(),
        "{what} has a read-only root filesystem"
    );
}

async fn list_tools(url: &str) -> Vec<String> {
    harness::mcp::list_tool_names_stateless(url)
        .await
        .unwrap_or_default()
}

async fn wait_listed(url: &str, names: &[&str]) {
    let start = std::time::Instant::now();
    loop {
        let seen = list_tools(url).await;
        if names.iter().all(|n| seen.iter().any(|s| s == n)) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "{url} did not list {names:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn call(url: &str, tool: &str, arguments: Value) -> Value {
    stateless(
        url,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await
    .unwrap()
    .response()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker and the images: run tests/images/run.sh"]
async fn every_image_runs_as_nonroot_on_a_read_only_root_filesystem_with_no_shell() {
    let images = Images::from_env();
    for image in [
        &images.gateway,
        &images.worker,
        &images.ctl,
        &images.python_worker,
    ] {
        assert_eq!(images.image_user(image).unwrap(), NONROOT, "{image}");
        let shell = images
            .run_once(image, &["--entrypoint", "/bin/sh"], &["-c", "true"])
            .unwrap();
        assert!(!shell.status.success(), "{image} has a shell");
    }

    // A NATS on loopback enforcing each role's permissions, as the other tests run it.
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path()).unwrap();
    let (port, metrics) = (free_port(), free_port());
    let listen = format!("MCPBUS_LISTEN=127.0.0.1:{port}");
    let metrics = format!("MCPBUS_METRICS_LISTEN=127.0.0.1:{metrics}");
    let gateway = images
        .run(
            "gateway",
            &images.gateway,
            &["-e", &listen, "-e", &metrics],
            &["--nats", &nats.gateway_url()],
        )
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base, Duration::from_secs(40)).await.unwrap();
    let healthz = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(healthz.status(), 200);
    assert_nonroot_read_only("the gateway", &gateway);
    // The image's HEALTHCHECK (`mcpbus-gateway --probe`) sees it ready too.
    eventually("the gateway's health check", WAIT, || {
        gateway.health().is_ok_and(|h| h == "healthy")
    })
    .await;

    let worker = images
        .run(
            "demo-worker",
            &images.worker,
            &[],
            &["--nats", &nats.worker_url("demo"), "demo"],
        )
        .unwrap();
    let python = images
        .run(
            "python-worker",
            &images.python_worker,
            &[],
            &["--nats", &nats.worker_url("py-example")],
        )
        .unwrap();
    let url = format!("{base}/mcp");
    let mut tools: Vec<&str> = DEMO_TOOLS.to_vec();
    tools.extend(PY_EXAMPLE_TOOLS);
    wait_listed(&url, &tools).await;
    assert_nonroot_read_only("the demo worker", &worker);
    assert_nonroot_read_only("the Python worker", &python);
    let r = call(&url, "echo", json!({"text": "from a container"})).await;
    assert_eq!(texts(&r["result"]), ["from a container"], "{r}");
    let r = call(&url, "py_add", json!({"a": 2, "b": 40})).await;
    assert_eq!(r["result"]["structuredContent"]["sum"], 42, "{r}");

    // mcpbusctl reads the cluster as the operator role and sees both pools.
    let status = images
        .run_once(
            &images.ctl,
            &[],
            &["status", "--json", "--nats", &nats.operator_url()],
        )
        .unwrap();
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "mcpbusctl status: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(out.contains("py-example") && out.contains("demo"), "{out}");
}

/// The NATS service leading the calls stream (`nats-1`..`nats-3`, from its server name).
async fn calls_leader(compose: &Compose) -> String {
    let client = async_nats::connect(compose.nats_urls()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(CALLS_STREAM).await.unwrap();
    let info = stream.info().await.unwrap();
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("the calls stream has a leader");
    let n = leader.strip_prefix('n').expect("servers are named n1..n3");
    format!("nats-{n}")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker and the images: run tests/images/run.sh"]
async fn the_compose_cluster_serves_clients_rides_out_a_nats_kill_and_drains_a_gateway() {
    let images = Images::from_env();
    let compose = Compose::up(&images).unwrap();
    let (gw1, gw2) = (compose.gateway_url(1), compose.gateway_url(2));
    for base in [&gw1, &gw2] {
        wait_ready(base, Duration::from_secs(90)).await.unwrap();
    }
    let urls = [format!("{gw1}/mcp"), format!("{gw2}/mcp")];
    let mut tools: Vec<&str> = DEMO_TOOLS.to_vec();
    tools.extend(PY_EXAMPLE_TOOLS);
    for url in &urls {
        wait_listed(url, &tools).await;
    }

    // A real client: the Python MCP SDK, on each lane.
    for (url, mode) in [(&urls[0], "legacy"), (&urls[1], "auto")] {
        let seen = harness::run_python_client("py_client.py", url, mode).await;
        assert_eq!(seen["echo"], json!(["hello from python"]), "{mode}: {seen}");
        assert_eq!(seen["add_structured"]["sum"], 5.0, "{mode}: {seen}");
    }
    let r = call(&urls[1], "py_add", json!({"a": 1, "b": 2})).await;
    assert_eq!(r["result"]["structuredContent"]["sum"], 3, "{r}");

    // docker kill of the NATS container leading the calls stream, under load on both
    // gateways and lanes, started again 8 s later: as tests/tests/nats_cluster.rs does
    // with processes, no call fails.
    let load = Load::start(&urls, 20).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = calls_leader(&compose).await;
    let id = compose.container(&victim).unwrap();
    eprintln!("killing {victim}, the calls stream's leader");
    images.docker(&["kill", &id]).unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    images.docker(&["start", &id]).unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    load.stop()
        .await
        .assert_none_failed(&format!("{victim} killed"));

    // docker stop (SIGTERM) of gateway 1 while it holds a resumable stream: the stream ends
    // with `retry:`, the client resumes on gateway 2 with Last-Event-ID, and sees every
    // step once; the gateway exits by itself within its grace period.
    let session = Session::open(&urls[0], "2025-11-25").await.unwrap();
    // 8 s of steps: long enough that `docker stop` (a CLI start and a daemon round trip on a
    // loaded machine) lands mid-call; with 2.4 s the call once ended first.
    let params = json!({"name": "slow_count", "arguments": {"n": STEPS, "interval_ms": 500},
                        "_meta": {"progressToken": "p1"}});
    let mut stream = session.stream_request("tools/call", params).await.unwrap();
    let mut seen = Seen::default();
    seen.read_until_progress(&mut stream, 2, WAIT).await;
    let gateway_1 = compose.container("gateway-1").unwrap();
    let stop = {
        let images = images.clone();
        tokio::task::spawn_blocking(move || images.docker(&["stop", "-t", "15", &gateway_1]))
    };
    let rest = stream.collect(WAIT).await.unwrap();
    assert!(
        rest.last().and_then(|e| e.retry).is_some(),
        "the draining gateway ended the stream with retry: {rest:?}"
    );
    seen.take_all(&rest);
    let mut resumed = session
        .via(&urls[1])
        .get_stream(seen.last_id.as_deref())
        .await
        .unwrap();
    seen.read_to_end(&mut resumed, WAIT).await;
    let every_step: BTreeMap<u64, usize> = (1..=u64::from(STEPS)).map(|i| (i, 1)).collect();
    assert_eq!(seen.progress, every_step, "progress lost or repeated");
    assert_eq!(seen.responses.len(), 1, "{:?}", seen.responses);
    assert_eq!(
        seen.responses[0]["result"]["structuredContent"]["count"],
        STEPS
    );
    stop.await.unwrap().unwrap();
    let code = compose
        .wait_exited("gateway-1", Duration::from_secs(20))
        .unwrap();
    assert_eq!(
        code, 0,
        "the gateway drained and exited by itself, not killed"
    );
}
