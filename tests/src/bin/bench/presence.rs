//! `mcpbus-bench presence`: how long a worker's tools take to appear in, and to leave, the
//! `tools/list` of every gateway (issue 18, P5; ADR 0029).
//!
//! Two gateways, default settings. Each round starts a demo worker (SDK defaults: 2 s beats,
//! 6 s TTL) and times from the spawn until both gateways list its tools (join: includes the
//! process's start and connect), then kills it with SIGKILL and times until both list none
//! (leave). Each gateway is polled with a stateless `tools/list` every 10 ms.
//! `MCPBUS_BIN_DIR` picks the build whose gateways and worker are measured, so one
//! benchmark binary measures a "before" and an "after" build alike.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use harness::mcp::list_tool_names_stateless;
use harness::{Cluster, DEMO_TOOLS};

use crate::echo::percentile_ms;

#[derive(Parser)]
pub struct Args {
    /// Join/leave rounds.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

/// Longer than any TTL a gateway honours by default (8 s), with room for a loaded machine.
const GIVE_UP: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(10);

/// Time from `t0` until every gateway lists exactly `want`: the slowest gateway's time.
async fn until_all_list(urls: &[String], want: &[String], t0: Instant) -> Result<Duration> {
    let mut pending: Vec<&String> = urls.iter().collect();
    let mut last = Duration::ZERO;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for url in pending {
            if list_tool_names_stateless(url).await.ok().as_deref() == Some(want) {
                last = t0.elapsed();
            } else {
                still.push(url);
            }
        }
        pending = still;
        if t0.elapsed() > GIVE_UP {
            bail!("gateways did not list {want:?} within {GIVE_UP:?}");
        }
        if !pending.is_empty() {
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(last)
}

pub async fn run(args: Args) -> Result<()> {
    let mut cluster = Cluster::start(2, &[]).await?;
    let urls = cluster.gateway_urls();
    let mut tools: Vec<String> = DEMO_TOOLS.iter().map(|s| s.to_string()).collect();
    tools.sort();
    let (mut joins, mut leaves) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let instance = format!("presence-{round}");
        let t0 = Instant::now();
        let w = cluster.add_worker(&["demo", "--instance", &instance])?;
        joins.push(until_all_list(&urls, &tools, t0).await?);
        // A few beats and probe rounds, as a worker that has served a while.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let t0 = Instant::now();
        cluster.workers[w].kill9();
        leaves.push(until_all_list(&urls, &[], t0).await?);
    }
    joins.sort();
    leaves.sort();
    let max = |d: &[Duration]| d.last().map_or(0.0, |d| d.as_secs_f64() * 1e3);
    println!("| Measure (2 gateways, slowest of the two) | Rounds | p50 (ms) | max (ms) |");
    println!("|---|---|---|---|");
    println!(
        "| join: spawn → tools listed | {} | {:.0} | {:.0} |",
        args.rounds,
        percentile_ms(&joins, 0.5),
        max(&joins)
    );
    println!(
        "| leave: kill -9 → tools gone | {} | {:.0} | {:.0} |",
        args.rounds,
        percentile_ms(&leaves, 0.5),
        max(&leaves)
    );
    Ok(())
}
