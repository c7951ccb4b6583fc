//! The `mcpbus-worker` command line.

use std::process::ExitCode;
use std::time::Duration;

use bus_schema::names::{InstanceId, PoolName};
use clap::{Parser, Subcommand};

use mcpbus_worker_sdk::{Worker, WorkerConfig};

use crate::bridge::Backend;
use crate::demo;
use crate::stdio_server::{EnvRule, StdioServer};

#[derive(Parser, Debug)]
#[command(
    name = "mcpbus-worker",
    version,
    about = "Serve MCP tools to an mcpbus cluster over NATS"
)]
struct Cli {
    /// NATS: seed servers, credentials, TLS (the same flags as mcpbus-gateway).
    #[command(flatten)]
    nats: bus_schema::connect::NatsArgs,
    /// Pool name; replicas with the same pool share the calls. Defaults to the command name.
    #[arg(long, env = "MCPBUS_POOL", global = true)]
    pool: Option<String>,
    /// Instance id inside the pool (default: random).
    #[arg(long, env = "MCPBUS_INSTANCE", global = true)]
    instance: Option<String>,
    /// Most calls this process runs at once.
    #[arg(long, default_value_t = 16, global = true)]
    max_in_flight: u32,
    /// Heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 2000, global = true)]
    heartbeat_ms: u64,
    /// How long gateways keep this instance after its last heartbeat, in milliseconds.
    #[arg(long, default_value_t = 6000, global = true)]
    ttl_ms: u64,
    /// How long a shutdown waits for running calls, in milliseconds.
    #[arg(long, default_value_t = 30000, global = true)]
    drain_ms: u64,
    /// Log line format: json, text, or auto (text on a terminal, JSON otherwise). Traces are
    /// configured by the standard OTEL_* variables (ADR 0020).
    #[arg(long, env = "MCPBUS_LOG_FORMAT", default_value = "auto", global = true)]
    log_format: mcpbus_telemetry::LogFormat,
    /// Serve this worker's Prometheus metrics on this address (`/metrics`); off if unset.
    #[arg(long, env = "MCPBUS_WORKER_METRICS_LISTEN", global = true)]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The fixtures of the official MCP conformance suite.
    Conformance,
    /// The demo tools: echo, add (structured output), fail, sleep, slow_count, wait, whoami.
    Demo {
        /// Prefix for every tool name, e.g. `b_` to run a second, distinct demo pool.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// The kit tools `mcpbusctl worker-check` calls (kit_echo, kit_once, kit_progress,
    /// kit_slow, kit_fail, kit_ask): the Rust SDK under the worker conformance kit.
    Kit,
    /// Serve an existing MCP server's tools: `bridge stdio -- npx -y some-server`.
    Bridge {
        #[command(subcommand)]
        transport: Bridge,
    },
}

#[derive(Subcommand, Debug)]
enum Bridge {
    /// Spawn a stdio MCP server (restarted with backoff when it exits).
    ///
    /// The server is third-party code: it starts with an empty environment plus `PATH` and
    /// `HOME` and what `--env` allows, never the worker's own variables (its NATS URL and
    /// password, tokens), and with `--uid`/`--gid` as another user.
    Stdio {
        /// Prefix for every bridged tool name, e.g. `everything__`: keeps two servers' tools
        /// of the same name apart in the catalogue.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Allow one environment variable into the server: `NAME` passes the worker's value
        /// (if it has one), `NAME=value` sets it. Repeatable. Nothing else is passed but
        /// `PATH` and `HOME`.
        #[arg(long = "env", value_name = "NAME[=VALUE]")]
        env: Vec<EnvRule>,
        /// Do not pass `PATH` and `HOME` either (give the command as an absolute path, or
        /// set them with `--env PATH=...`).
        #[arg(long)]
        no_default_env: bool,
        /// Run the server as this user id (the worker needs root or CAP_SETUID).
        #[arg(long)]
        uid: Option<u32>,
        /// Run the server as this group id (the worker needs root or CAP_SETGID).
        #[arg(long)]
        gid: Option<u32>,
        /// The server's command line.
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
    /// Connect to a remote Streamable HTTP MCP server (reconnected with backoff).
    Http {
        /// The server's MCP endpoint, e.g. https://mcp.example.com/mcp.
        url: String,
        /// Prefix for every bridged tool name (see `stdio`).
        #[arg(long, default_value = "")]
        prefix: String,
        /// Extra request header, `Name: value`; repeatable.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Bearer token for the Authorization header.
        #[arg(long, env = "MCPBUS_BRIDGE_BEARER", hide_env_values = true)]
        bearer: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match mcpbus_telemetry::init("mcpbus-worker", cli.log_format) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mcpbus-worker: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = bus_schema::process::run_main("mcpbus-worker", run(cli));
    // Flushes the spans not yet exported.
    drop(telemetry);
    code
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Checked before anything starts, so a bad setting is the one error shown.
    let nats = cli.nats.into_options()?;
    let (mut resources, mut prompts) = (Vec::new(), Vec::new());
    let mut bridged = None;
    let (default_pool, tools) = match cli.command {
        Command::Bridge { transport } => {
            let (backend, prefix) = match transport {
                Bridge::Stdio {
                    command,
                    prefix,
                    env,
                    no_default_env,
                    uid,
                    gid,
                } => {
                    let mut server = StdioServer::new(command, &env, !no_default_env, |name| {
                        std::env::var_os(name)
                    });
                    (server.uid, server.gid) = (uid, gid);
                    (Backend::Stdio(server), prefix)
                }
                Bridge::Http {
                    url,
                    prefix,
                    headers,
                    bearer,
                } => {
                    let headers = headers
                        .iter()
                        .map(|h| {
                            h.split_once(':')
                                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                                .ok_or_else(|| {
                                    anyhow::anyhow!("--header {h:?} is not `Name: value`")
                                })
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    (
                        Backend::Http {
                            url,
                            headers,
                            bearer,
                        },
                        prefix,
                    )
                }
            };
            let valid = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
            if !prefix.chars().all(valid) {
                anyhow::bail!("--prefix {prefix:?}: tool names allow only letters, digits, _ - .");
            }
            bridged = Some((backend, prefix));
            ("bridge", Vec::new())
        }
        Command::Conformance => {
            resources = crate::conformance::resources();
            prompts = crate::conformance::prompts();
            ("conformance", crate::conformance::tools())
        }
        Command::Kit => ("kit", crate::kit::tools()),
        Command::Demo { prefix } => (
            "demo",
            demo::tools()
                .into_iter()
                .map(|t| {
                    let name = format!("{prefix}{}", t.name());
                    t.named(name)
                })
                .collect::<Vec<_>>(),
        ),
    };
    // Checked here too, though `Worker::run` would refuse it, so the message names the flag.
    let pool = PoolName::new(cli.pool.unwrap_or_else(|| default_pool.to_owned()))
        .map_err(|e| anyhow::anyhow!("invalid --pool: {e}"))?;
    let instance = cli
        .instance
        .map(InstanceId::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("invalid --instance: {e}"))?;
    // `WorkerConfig` is non-exhaustive: start from its defaults and set what the flags say.
    let mut config = WorkerConfig::default();
    config.instance = instance;
    config.max_in_flight = cli.max_in_flight;
    config.heartbeat = Duration::from_millis(cli.heartbeat_ms);
    config.ttl = Duration::from_millis(cli.ttl_ms);
    config.drain_timeout = Duration::from_millis(cli.drain_ms);
    config.metrics_listen = cli.metrics_listen;
    // Under NATS permissions a pool's workers may read only its inboxes (ADR 0013).
    let nats = nats.with_inbox_prefix(bus_schema::subjects::worker_inbox_prefix(&pool));
    let nats = bus_schema::connect::connect(&nats, "mcpbus-worker").await?;
    let mut worker = Worker::new(pool.as_str()).config(config).tools(tools);
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop_bridge = stop.clone().drop_guard();
    if let Some((backend, prefix)) = bridged {
        crate::bridge::supervise(backend, prefix, worker.catalogue(), stop.clone()).await?;
    }
    for r in resources {
        worker = worker.resource(r);
    }
    for p in prompts {
        worker = worker.prompt(p);
    }
    worker
        .run(nats, bus_schema::process::shutdown_signal())
        .await?;
    Ok(())
}
