//! `mcpbus-bench echo`: latency and throughput of the demo `echo` tool, through the bus and
//! in-process.
//!
//! Paths measured, all over HTTP on loopback with the same JSON-RPC request:
//! - `bus, stateless lane`: gateway → JetStream work queue → worker → reply → gateway;
//! - `bus, session lane`: the same plus the session lookup in JetStream KV on every request;
//! - `in-process baseline`: a minimal axum server that parses the request and runs the same
//!   `echo` handler directly: HTTP and JSON cost, no bus, no session, no transport checks.
//!
//! The gateway runs with `--json-tool-calls` so that every path answers with one JSON body.
//! Run with release binaries: see docs/PERFORMANCE.md for the command.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::routing::post;
use clap::Parser;
use harness::mcp::{modern_meta, Session, ACCEPT_BOTH, MODERN};
use harness::{Cluster, DEMO_TOOLS};
use serde_json::{json, Value};

#[derive(Parser)]
pub struct Args {
    /// Measured calls per run (after warm-up).
    #[arg(long, default_value_t = 5000)]
    calls: usize,
    /// Concurrency levels (in-flight calls).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// nats-servers: 1, or a JetStream cluster of 3 with every stream at three replicas
    /// (the soak's topology, whose saturation sets the soak's rate).
    #[arg(long, default_value_t = 1)]
    nats_servers: usize,
}

/// One way of making a call.
#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub async fn run_all(args: Args) -> Result<()> {
    let mut cluster = if args.nats_servers > 1 {
        Cluster::start_clustered(args.nats_servers, 0, &[]).await?
    } else {
        Cluster::start(0, &[]).await?
    };
    // The benchmark is thousands of clients on one address: quotas out of the way.
    let mut gateway_args = vec!["--json-tool-calls"];
    gateway_args.extend(harness::LOAD_FROM_LOOPBACK);
    cluster.add_gateway(&gateway_args).await?;
    cluster.add_worker(&["demo", "--max-in-flight", "64"])?;
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(20))
        .await?;
    let gateway = cluster.gateway_urls()[0].clone();
    let baseline = start_baseline().await?;

    let echo = json!({"name": "echo", "arguments": {"text": "hello"}});
    let mut stateless_params = echo.clone();
    stateless_params["_meta"] = modern_meta();
    let session = Session::open(&gateway, "2025-11-25").await?;
    let common = |extra: &[(&str, &str)]| {
        let mut h = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("accept".to_owned(), ACCEPT_BOTH.to_owned()),
        ];
        h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        h
    };
    let targets = [
        Target {
            name: "bus, stateless lane",
            url: gateway.clone(),
            headers: common(&[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ]),
            body: rpc(&stateless_params),
        },
        Target {
            name: "bus, session lane",
            url: gateway.clone(),
            headers: common(&[
                ("mcp-session-id", &session.id),
                ("mcp-protocol-version", "2025-11-25"),
            ]),
            body: rpc(&echo),
        },
        Target {
            name: "in-process baseline",
            url: baseline,
            headers: common(&[]),
            body: rpc(&echo),
        },
    ];

    println!("| Path | Concurrency | Calls | p50 (ms) | p99 (ms) | Calls/s |");
    println!("|---|---|---|---|---|---|");
    for target in &targets {
        for &c in &args.concurrency {
            measure(target, c, (args.calls / 10).max(100)).await?; // warm-up
            let r = measure(target, c, args.calls).await?;
            println!(
                "| {} | {} | {} | {:.3} | {:.3} | {:.0} |",
                target.name, c, args.calls, r.p50_ms, r.p99_ms, r.per_sec
            );
        }
    }
    Ok(())
}

pub fn rpc(params: &Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).to_string()
}

pub struct Figures {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub per_sec: f64,
}

/// The p-th percentile of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// Makes `calls` calls with `concurrency` in flight; every response is checked.
pub async fn measure(target: &Target, concurrency: usize, calls: usize) -> Result<Figures> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let target = Arc::new(target.clone());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let share = calls / concurrency + usize::from(worker < calls % concurrency);
        let (http, target) = (http.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            for _ in 0..share {
                let t0 = Instant::now();
                let mut req = http.post(&target.url).body(target.body.clone());
                for (k, v) in &target.headers {
                    req = req.header(k, v);
                }
                let body: Value = req.send().await?.json().await?;
                anyhow::ensure!(
                    body["result"]["content"][0]["text"] == "hello",
                    "bad response: {body}"
                );
                latencies.push(t0.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::with_capacity(calls);
    for t in tasks {
        all.extend(t.await.context("call task")??);
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
    Ok(Figures {
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        per_sec: all.len() as f64 / elapsed.as_secs_f64(),
    })
}

/// The same `echo` handler served in-process behind a minimal JSON-RPC endpoint.
async fn start_baseline() -> Result<String> {
    let echo = Arc::new(mcpbus_worker::demo::echo());
    let app = axum::Router::new().route(
        "/mcp",
        post(move |body: axum::body::Bytes| {
            let echo = echo.clone();
            async move {
                let req: Value = serde_json::from_slice(&body).unwrap_or_default();
                let args = req["params"]["arguments"].clone();
                let result = echo.call_in_process(args).await;
                axum::Json(json!({"jsonrpc": "2.0", "id": req["id"], "result": result}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
