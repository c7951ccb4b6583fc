//! `mcpbus-bench tracing`: what tracing costs (ADR 0020). Two clusters side by side in one
//! run, each with its own nats-server, one gateway and one `demo` worker: one with tracing
//! off (no `OTEL_*` variable: no OpenTelemetry layer, no exporter), one with tracing on,
//! sampling every call (`parentbased_always_on`) and exporting over OTLP/HTTP to a real
//! collector (rotel, receiving and dropping the spans) on the same machine. The two are
//! measured in alternation, `--rounds` times, with the same `echo` call on the stateless
//! lane (one JSON body), so that drift on a shared machine hits both alike.

use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use harness::mcp::{modern_meta, ACCEPT_BOTH, MODERN};
use harness::otel::Collector;
use harness::secure_nats::Access;
use harness::{Cluster, DEMO_TOOLS};
use serde_json::json;

use crate::echo::{measure, rpc, Target};

#[derive(Parser)]
pub struct Args {
    /// Measured calls per run (after warm-up).
    #[arg(long, default_value_t = 5000)]
    calls: usize,
    /// Concurrency levels (in-flight calls).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Runs of each side, alternating.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
}

/// A cluster of one gateway and one worker, traced when `env` sets `OTEL_*`.
async fn cluster(env: &[(String, String)]) -> Result<Cluster> {
    let mut cluster = Cluster::start(0, &[]).await?;
    let mut gateway_args = vec!["--json-tool-calls"];
    gateway_args.extend(harness::LOAD_FROM_LOOPBACK);
    let mut gw = Access::servers(&cluster.nats.gateway_url());
    gw.env.extend(env.iter().cloned());
    cluster.add_gateway_with(&gw, &gateway_args).await?;
    let mut worker = Access::servers(&cluster.nats.worker_url("demo"));
    worker.env.extend(env.iter().cloned());
    cluster.add_worker_with(&worker, &["demo", "--max-in-flight", "64"])?;
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(20))
        .await?;
    Ok(cluster)
}

fn target(name: &'static str, cluster: &Cluster) -> Target {
    let mut params = json!({"name": "echo", "arguments": {"text": "hello"}});
    params["_meta"] = modern_meta();
    Target {
        name,
        url: cluster.gateway_urls()[0].clone(),
        headers: [
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        body: rpc(&params),
    }
}

pub async fn run(args: Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start_with(dir.path(), false)?;
    let mut env = collector.env("mcpbus-bench");
    env.push(("OTEL_TRACES_SAMPLER".into(), "always_on".into()));
    let off = cluster(&[]).await?;
    let on = cluster(&env).await?;
    let targets = [
        target("tracing off", &off),
        target("tracing on, 100% sampled, exported", &on),
    ];
    println!("| Tracing | Concurrency | Round | Calls | p50 (ms) | p99 (ms) | Calls/s |");
    println!("|---|---|---|---|---|---|---|");
    for &c in &args.concurrency {
        for t in &targets {
            measure(t, c, (args.calls / 10).max(100)).await?; // warm-up
        }
        for round in 1..=args.rounds {
            for t in &targets {
                let r = measure(t, c, args.calls).await?;
                println!(
                    "| {} | {} | {} | {} | {:.3} | {:.3} | {:.0} |",
                    t.name, c, round, args.calls, r.p50_ms, r.p99_ms, r.per_sec
                );
            }
        }
    }
    // A failed export is logged by the OpenTelemetry SDK (ADR 0020): show any, so that a
    // run whose spans did not reach the collector is not taken for a cheap one.
    for proc in [&on.gateways[0].proc, &on.workers[0]] {
        let log = proc.log_text();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("opentelemetry"))
            .collect();
        if !lines.is_empty() {
            eprintln!("{}: exporter messages:\n{}", proc.name, lines.join("\n"));
        }
    }
    drop(collector);
    Ok(())
}
