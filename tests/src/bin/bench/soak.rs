//! `mcpbus-bench soak --minutes N`: mixed traffic on a 3-node NATS cluster for N minutes,
//! with every process's memory and open files and the NATS stores sampled once a minute
//! (issue 15; the traffic is described in `harness::soak`). Prints the samples, the memory
//! growth of each process and the errors by kind. Meant for release builds at about half
//! the measured saturation; CI runs a short one in debug (`tests/tests/soak.rs`).

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;
use harness::soak::{self, SoakPlan};

#[derive(Parser)]
pub struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// Steady `echo` calls per second, both lanes together.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds between samples.
    #[arg(long, default_value_t = 60)]
    sample_secs: u64,
    /// Seconds between worker restarts.
    #[arg(long, default_value_t = 180)]
    restart_secs: u64,
    /// The gateways' `--event-retention-secs` (default: theirs, 1 h). Shorter than the run,
    /// it shows whether the NATS stores level off.
    #[arg(long)]
    event_retention_secs: Option<u64>,
}

pub async fn run(args: Args) -> Result<()> {
    let plan = SoakPlan {
        length: Duration::from_secs_f64(args.minutes * 60.0),
        calls_per_second: args.rate,
        sample_every: Duration::from_secs(args.sample_secs),
        restart_every: Duration::from_secs(args.restart_secs),
        event_retention: args.event_retention_secs.map(Duration::from_secs),
    };
    let report = soak::run(&plan).await?;
    println!(
        "## Soak: {} min, {} calls/s, {} worker restarts\n",
        args.minutes, args.rate, report.worker_restarts
    );
    println!("| minute | store MiB | process: RSS KiB / fds |\n|---|---|---|");
    for s in &report.samples {
        let procs: Vec<String> = s
            .processes
            .iter()
            .map(|(name, (rss, fds))| format!("{name} {rss}/{fds}"))
            .collect();
        println!(
            "| {:.1} | {:.1} | {} |",
            s.at.as_secs_f64() / 60.0,
            s.store_bytes as f64 / 1048576.0,
            procs.join(", ")
        );
    }
    println!("\nRSS growth, KiB per minute:");
    for (name, slope) in report.rss_slopes() {
        println!("- {name}: {slope:+.1}");
    }
    println!(
        "\ncalls: {} ok, failed {:?}, skipped {}, slowest {:?}",
        report.calls.ok, report.calls.failed, report.calls.skipped, report.calls.slowest
    );
    println!(
        "counted worker: {} calls run, {} ran twice, {} run again after a lost delivery",
        report.runs.texts, report.runs.silent_repeats, report.runs.redelivered
    );
    println!(
        "long calls resumed on the other gateway: {} ok, failed {:?}",
        report.long_calls_ok, report.long_calls_failed
    );
    println!(
        "list_changed heard per listener: {:?} (at least {} each)",
        report.list_changed, report.list_changed_expected
    );
    if report.errors() > 0 {
        bail!("{} errors", report.errors());
    }
    Ok(())
}
