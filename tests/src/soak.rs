//! A soak (issue 15): mixed traffic on a 3-node NATS cluster for a set time, with every
//! process's memory and open files and the NATS stores sampled along the way.
//!
//! Traffic, all bounded: steady calls on both lanes ([`Load`]), taking turns between the
//! demo workers' `echo` and a [`Counted`] worker that tells whether any call ran twice; every few seconds a
//! long session-lane call with progress whose stream is dropped half-way and resumed on the
//! other gateway (every step and the result must arrive exactly once); a listening stream
//! per gateway for the whole run; a graceful restart of one of two demo replicas and of an
//! `extra` pool every `restart_every` (the demo tools stay listed; the extra pool's leave and
//! return must reach every listener as `list_changed`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use crate::counted::{self, Counted, RunCount};
use crate::load::{Load, Tally};
use crate::mcp::Session;
use crate::sse::SseStream;
use crate::{Cluster, DEMO_TOOLS, LOAD_FROM_LOOPBACK};

/// What a soak runs.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub length: Duration,
    pub calls_per_second: u32,
    pub sample_every: Duration,
    pub restart_every: Duration,
    /// The gateways' `--event-retention-secs` (`None`: their default, 1 h). A soak longer
    /// than it shows whether the NATS stores level off.
    pub event_retention: Option<Duration>,
}

/// One reading of every process and of the NATS stores.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Duration,
    /// Process name → (resident KiB, open file descriptors).
    pub processes: BTreeMap<String, (u64, u64)>,
    pub store_bytes: u64,
}

/// What a soak saw.
#[derive(Debug, Default)]
pub struct SoakReport {
    pub calls: Tally,
    /// What the counted worker ran: no call may have run twice.
    pub runs: RunCount,
    /// Long calls resumed on the other gateway: completed exactly, or failed by kind.
    pub long_calls_ok: usize,
    pub long_calls_failed: BTreeMap<String, usize>,
    pub worker_restarts: usize,
    /// `list_changed` heard per listener, and how many each should have heard at least.
    pub list_changed: Vec<usize>,
    pub list_changed_expected: usize,
    pub samples: Vec<Sample>,
}

impl SoakReport {
    /// Every failure of every kind: failed or skipped calls, failed long calls, and
    /// listeners that missed a change.
    pub fn errors(&self) -> usize {
        let missed = self
            .list_changed
            .iter()
            .filter(|&&heard| heard < self.list_changed_expected)
            .count();
        self.calls.failures()
            + self.calls.skipped
            + self.long_calls_failed.values().sum::<usize>()
            + missed
            + self.runs.silent_repeats
    }

    /// Resident memory growth of each process over the run, KiB per minute (least squares
    /// over the samples).
    pub fn rss_slopes(&self) -> BTreeMap<String, f64> {
        let names: Vec<String> = self
            .samples
            .last()
            .map(|s| s.processes.keys().cloned().collect())
            .unwrap_or_default();
        names
            .into_iter()
            .map(|name| {
                let points: Vec<(f64, f64)> = self
                    .samples
                    .iter()
                    .filter_map(|s| {
                        let (rss, _) = s.processes.get(&name)?;
                        Some((s.at.as_secs_f64() / 60.0, *rss as f64))
                    })
                    .collect();
                (name, slope(&points))
            })
            .collect()
    }
}

fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), p| {
        (a + (p.0 - mx) * (p.1 - my), b + (p.0 - mx).powi(2))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Starts a 3-node cluster with two gateways, two demo replicas and an `extra` pool, runs
/// `plan` on it and returns what it saw.
pub async fn run(plan: &SoakPlan) -> Result<SoakReport> {
    let mut gateway_args: Vec<String> = LOAD_FROM_LOOPBACK.iter().map(|a| a.to_string()).collect();
    if let Some(keep) = plan.event_retention {
        gateway_args.extend(["--event-retention-secs".into(), keep.as_secs().to_string()]);
    }
    let gateway_args: Vec<&str> = gateway_args.iter().map(String::as_str).collect();
    let mut cluster = Cluster::start_clustered(3, 2, &gateway_args).await?;
    let mut demo = [
        cluster.add_worker(&["demo"])?,
        cluster.add_worker(&["demo"])?,
    ];
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(60))
        .await?;
    let counted = Counted::start(&cluster).await?;
    let mut extra = cluster.add_worker(EXTRA)?;
    cluster
        .wait_for_listed("x_echo", Duration::from_secs(60))
        .await?;
    let urls = cluster.gateway_urls();
    let mut listeners = Vec::new();
    for url in &urls {
        let session = Session::open(url, "2025-11-25").await?;
        let stream = session.get_stream(None).await?;
        listeners.push(Listener {
            _session: session,
            stream,
            heard: 0,
        });
    }
    let long_session = Session::open(&urls[0], "2025-11-25").await?;
    let load = Load::start_with(&urls, plan.calls_per_second, &["echo", counted::TOOL]).await?;

    let mut report = SoakReport::default();
    let started = Instant::now();
    let mut next_sample = started;
    let mut next_restart = started + plan.restart_every;
    let mut next_long = started;
    let mut long_calls = 0usize;
    while started.elapsed() < plan.length {
        let now = Instant::now();
        if now >= next_sample {
            report.samples.push(sample(&mut cluster, started.elapsed()));
            next_sample += plan.sample_every;
        }
        if now >= next_restart {
            // One demo replica drained and replaced (the other keeps the tools listed), and
            // the extra pool restarted: it leaves and returns, a change per listener each way.
            let i = report.worker_restarts % 2;
            restart(&mut cluster, &mut demo[i], &["demo"])?;
            restart(&mut cluster, &mut extra, EXTRA)?;
            report.worker_restarts += 1;
            next_restart += plan.restart_every;
        }
        if now >= next_long {
            let via = &urls[long_calls % urls.len()];
            let other = &urls[(long_calls + 1) % urls.len()];
            match long_call(&long_session, via, other).await {
                Ok(()) => report.long_calls_ok += 1,
                Err(kind) => *report.long_calls_failed.entry(kind).or_default() += 1,
            }
            long_calls += 1;
            next_long = Instant::now() + LONG_CALL_EVERY;
        }
        for l in &mut listeners {
            l.drain().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.calls = load.stop().await;
    report.runs = counted.count();
    // Changes made near the end need a moment to arrive.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        for l in &mut listeners {
            l.drain().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.samples.push(sample(&mut cluster, started.elapsed()));
    report.list_changed = listeners.iter().map(|l| l.heard).collect();
    // The extra pool leaves and returns per restart: each at least once (a gateway may
    // coalesce a leave and a return that fall close together into one notification).
    report.list_changed_expected = report.worker_restarts;
    Ok(report)
}

const EXTRA: &[&str] = &["demo", "--pool", "extra", "--prefix", "x_"];

/// How often a long call with a resume is made.
const LONG_CALL_EVERY: Duration = Duration::from_secs(5);

/// SIGTERM (a drain) of worker `i`, then a fresh one with `args` in its place.
fn restart(cluster: &mut Cluster, i: &mut usize, args: &[&str]) -> Result<()> {
    let old = &mut cluster.workers[*i];
    old.terminate();
    if old.wait_exit(Duration::from_secs(30)).is_none() {
        old.kill9();
    }
    *i = cluster.add_worker(args)?;
    Ok(())
}

struct Listener {
    _session: Session,
    stream: SseStream,
    heard: usize,
}

impl Listener {
    /// Reads what has arrived, without waiting.
    async fn drain(&mut self) {
        while let Ok(Some(e)) = self.stream.next(Duration::from_millis(1)).await {
            if e.data.contains("notifications/tools/list_changed") {
                self.heard += 1;
            }
        }
    }
}

/// A session-lane `slow_count` with progress on `via`, dropped after three steps and resumed
/// on `other`: every step and the result exactly once. `Err` names what went wrong.
async fn long_call(session: &Session, via: &str, other: &str) -> Result<(), String> {
    const STEPS: u64 = 6;
    let call = json!({"name": "slow_count", "arguments": {"n": STEPS, "interval_ms": 100},
                      "_meta": {"progressToken": "soak"}});
    let mut stream = session
        .via(via)
        .stream_request("tools/call", call)
        .await
        .map_err(|_| "open".to_owned())?;
    let mut steps = BTreeMap::<u64, usize>::new();
    let mut results = 0;
    let mut last_id = None;
    let mut resumed = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while results == 0 {
        if Instant::now() > deadline {
            return Err("long call timeout".into());
        }
        if !resumed && steps.len() >= 3 {
            resumed = true;
            stream = session
                .via(other)
                .get_stream(last_id.as_deref())
                .await
                .map_err(|_| "resume".to_owned())?;
        }
        let Ok(Some(e)) = stream.next(Duration::from_secs(10)).await else {
            return Err("stream ended early".into());
        };
        if let Some(id) = &e.id {
            last_id = Some(id.clone());
        }
        let Some(msg) = e.json() else { continue };
        if msg["method"] == "notifications/progress" {
            let step = msg["params"]["progress"].as_f64().unwrap_or(-1.0) as u64;
            *steps.entry(step).or_default() += 1;
        } else if msg.get("error").is_some() {
            return Err(format!("error {}", msg["error"]["code"]));
        } else if msg.get("result").is_some() {
            results += 1;
        }
    }
    let once: BTreeMap<u64, usize> = (1..=STEPS).map(|i| (i, 1)).collect();
    if steps != once {
        return Err("progress lost or duplicated".into());
    }
    Ok(())
}

fn sample(cluster: &mut Cluster, at: Duration) -> Sample {
    let mut processes = BTreeMap::new();
    let mut add = |name: String, pid: u32| {
        if let Some(reading) = read_process(pid) {
            processes.insert(name, reading);
        }
    };
    for (i, node) in cluster.nats.nodes().iter().enumerate() {
        add(format!("nats-{i}"), node.proc.pid());
    }
    for (i, g) in cluster.gateways.iter().enumerate() {
        add(format!("gateway-{i}"), g.proc.pid());
    }
    // Workers are replaced during the run; each slot is named by its position. A replaced
    // one has been reaped, and its pid may since belong to another process: skipped.
    for (i, w) in cluster.workers.iter_mut().enumerate() {
        if !w.exited() {
            add(format!("worker-{i}"), w.pid());
        }
    }
    let store_bytes = cluster
        .nats
        .nodes()
        .iter()
        .map(|n| dir_bytes(&n.store))
        .sum();
    Sample {
        at,
        processes,
        store_bytes,
    }
}

/// Resident KiB and open file descriptors of a live process.
fn read_process(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_is_growth_per_minute() {
        let flat = [(0.0, 100.0), (1.0, 100.0), (2.0, 100.0)];
        assert_eq!(slope(&flat), 0.0);
        let growing = [(0.0, 100.0), (1.0, 110.0), (2.0, 120.0)];
        assert!((slope(&growing) - 10.0).abs() < 1e-9);
        assert_eq!(slope(&[(0.0, 5.0)]), 0.0);
    }
}
