//! `mcpbus-bench replay`: how long a resumed stream takes to replay missed events.
//!
//! Runs `slow_count` with `interval_ms: 0` to store N progress events and a result in one
//! request stream, then resumes it from its priming event id (so every event is missed) on
//! the other gateway, timing from the GET until the stream ends with the response.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Parser;
use harness::mcp::Session;
use harness::{Cluster, DEMO_TOOLS};
use serde_json::json;

use crate::echo::percentile_ms;

#[derive(Parser)]
pub struct Args {
    /// Events to replay.
    #[arg(long, default_value_t = 1000)]
    events: u32,
    /// Repetitions.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

pub async fn run(args: Args) -> Result<()> {
    let mut cluster = Cluster::start(2, &harness::LOAD_FROM_LOOPBACK).await?;
    cluster.add_worker(&["demo"])?;
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(20))
        .await?;
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await?;
    let params = json!({"name": "slow_count", "arguments": {"n": args.events, "interval_ms": 0},
        "_meta": {"progressToken": "bench"}});
    let original = session
        .stream_request("tools/call", params)
        .await?
        .collect(Duration::from_secs(120))
        .await?;
    let priming = original[0].id.clone().expect("priming id");
    let expected = original.len() - 1;
    let elsewhere = session.via(&urls[1]);
    let mut times = Vec::new();
    for _ in 0..args.rounds {
        let t0 = Instant::now();
        let replayed = elsewhere
            .get_stream(Some(&priming))
            .await?
            .collect(Duration::from_secs(120))
            .await?;
        times.push(t0.elapsed());
        ensure!(
            replayed.len() - 1 == expected,
            "replayed {} of {expected}",
            replayed.len() - 1
        );
    }
    times.sort();
    let p50 = percentile_ms(&times, 0.5);
    println!("| Events replayed | Rounds | p50 (ms) | max (ms) | Events/s at p50 |");
    println!("|---|---|---|---|---|");
    println!(
        "| {expected} | {} | {p50:.1} | {:.1} | {:.0} |",
        args.rounds,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        expected as f64 / (p50 / 1e3)
    );
    Ok(())
}
