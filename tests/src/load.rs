//! Steady, bounded call traffic for fault tests (issue 15): `echo` calls (or any tool that
//! answers its `text`, such as [`crate::counted`]'s) at a fixed rate, alternating the
//! stateless lane and sessions opened before the fault, spread over every gateway, each
//! outcome counted by kind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::mcp::{stateless, Session};

/// How long one call may take before it counts as hung. Longer than the calls consumer's
/// 30 s ack wait, after which JetStream delivers again a call whose first delivery was lost
/// (the likeliest reading of a call seen waiting 30 s in a follower-kill run; issue 15).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Calls in flight at most: this many seconds of calls (and never fewer than 256). Past it
/// a tick is counted as `skipped`, never queued, so a stalled cluster cannot make the test
/// hold unbounded work. Half of [`CALL_TIMEOUT`]: longer than a failover window (a frozen
/// leader's elections, then the workers' pull requests expiring, stall every call for
/// ~10–15 s), so only a stall of most of a call's timeout shows as skipped calls.
const MAX_IN_FLIGHT_SECS: u64 = 30;

/// The outcomes of a load run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ok: usize,
    /// Failed calls by kind: the JSON-RPC `data.reason` (or code), `http <status>`,
    /// `transport`, `timeout`, `wrong answer`.
    pub failed: BTreeMap<String, usize>,
    /// Ticks not sent because [`MAX_IN_FLIGHT_SECS`] of calls were already waiting.
    pub skipped: usize,
    pub slowest: Duration,
    /// The longest a failed call took: how promptly refusals come.
    pub slowest_failure: Duration,
    /// The first failed calls, for diagnosis: which lane, tool and text, what, and when.
    pub first_failures: Vec<String>,
    /// When the last failure was seen, from the start of the run.
    pub last_failure: Option<Duration>,
}

impl Tally {
    pub fn failures(&self) -> usize {
        self.failed.values().sum()
    }

    /// What a client may see while a NATS node is away: nothing. Every call completed, a
    /// fair number of them, and none waited so long that ticks were skipped.
    pub fn assert_none_failed(&self, what: &str) {
        eprintln!("{what}: {self:?}");
        assert!(self.ok > 200, "{what}: too few calls completed: {self:?}");
        assert_eq!(self.failures(), 0, "{what}: {self:?}");
        assert_eq!(self.skipped, 0, "{what}: calls piled up: {self:?}");
    }
}

/// A running load; [`Load::stop`] ends it and returns the tally.
pub struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Tally>,
}

impl Load {
    /// Sends `per_second` `echo` calls a second, alternately on the stateless lane and on one
    /// session per gateway (opened now, 2025-11-25), round-robin over `urls`.
    pub async fn start(urls: &[String], per_second: u32) -> anyhow::Result<Self> {
        Self::start_with(urls, per_second, &["echo"]).await
    }

    /// Like [`Load::start`], the calls taking turns over `tools` (each pair of calls, one per
    /// lane, goes to the next tool); every tool must answer its `text` argument.
    pub async fn start_with(
        urls: &[String],
        per_second: u32,
        tools: &[&'static str],
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!tools.is_empty(), "a load needs a tool to call");
        let tools = tools.to_vec();
        // Every call's text is unique in this process, across loads: a counted worker keys
        // its runs by it.
        static LOADS: AtomicUsize = AtomicUsize::new(0);
        let load = LOADS.fetch_add(1, Ordering::Relaxed);
        let mut sessions = Vec::new();
        for url in urls {
            sessions.push(Session::open(url, "2025-11-25").await?);
        }
        let urls = urls.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let in_flight = (per_second as usize * MAX_IN_FLIGHT_SECS as usize).max(256);
            let slots = Arc::new(Semaphore::new(in_flight));
            let mut calls = JoinSet::new();
            let mut tally = Tally::default();
            let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
            let mut n = 0usize;
            while !stopping.load(Ordering::Relaxed) {
                tick.tick().await;
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tally.skipped += 1;
                    continue;
                };
                let text = format!("load{load}-call-{n}");
                let url = urls[n % urls.len()].clone();
                let session = (n % 2 == 1).then(|| sessions[n / 2 % sessions.len()].clone());
                let tool = tools[n / 2 % tools.len()];
                n += 1;
                calls.spawn(async move {
                    let begun = Instant::now();
                    let outcome = one_call(&url, session.as_ref(), tool, &text).await;
                    drop(slot);
                    let lane = if session.is_some() {
                        "session"
                    } else {
                        "stateless"
                    };
                    let outcome = outcome.map_err(|(kind, said)| {
                        (kind, format!("{lane} lane, {tool} {text}"), said)
                    });
                    (outcome, begun.elapsed(), begun.duration_since(started))
                });
                while let Some(done) = calls.try_join_next() {
                    count(&mut tally, done.expect("a call task"));
                }
            }
            while let Some(done) = calls.join_next().await {
                count(&mut tally, done.expect("a call task"));
            }
            tally
        });
        Ok(Self { stop, task })
    }

    /// Stops sending; [`Load::stop`] then waits for the calls still in flight.
    pub fn halt(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops sending, waits for the calls in flight, and returns the tally.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the load task")
    }
}

/// Failed calls described in [`Tally::first_failures`], at most.
const FAILURES_DESCRIBED: usize = 10;

/// A call's outcome: `Err` holds the kind of failure, which call it was, and what the
/// gateway said.
type Outcome = Result<(), (String, String, String)>;

fn count(tally: &mut Tally, (outcome, took, at): (Outcome, Duration, Duration)) {
    tally.slowest = tally.slowest.max(took);
    match outcome {
        Ok(()) => tally.ok += 1,
        Err((kind, call, said)) => {
            if tally.first_failures.len() < FAILURES_DESCRIBED {
                tally.first_failures.push(format!(
                    "{call}: {kind} after {took:.1?}, sent {:.1?} in ({said})",
                    at
                ));
            }
            *tally.failed.entry(kind).or_default() += 1;
            tally.slowest_failure = tally.slowest_failure.max(took);
            tally.last_failure = Some(tally.last_failure.unwrap_or_default().max(at + took));
        }
    }
}

/// One call of `tool`; `Err` names the kind of failure and what was said.
async fn one_call(
    url: &str,
    session: Option<&Session>,
    tool: &str,
    text: &str,
) -> Result<(), (String, String)> {
    let fail = |kind: &str, said: String| Err((kind.to_owned(), said));
    let params = json!({"name": tool, "arguments": {"text": text}});
    let sent = async {
        match session {
            Some(s) => s.request("tools/call", params).await,
            None => stateless(url, "tools/call", params).await,
        }
    };
    let resp = match tokio::time::timeout(CALL_TIMEOUT, sent).await {
        Err(_) => return fail("timeout", String::new()),
        Ok(Err(e)) => return fail("transport", e.to_string()),
        Ok(Ok(r)) => r,
    };
    let Ok(message) = resp.response() else {
        return fail(&format!("http {}", resp.status), String::new());
    };
    if let Some(error) = message.get("error") {
        let reason = error["data"]["reason"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("code {}", error["code"]));
        return fail(
            &reason,
            error["message"].as_str().unwrap_or_default().to_owned(),
        );
    }
    let answered: Vec<&str> = message["result"]["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect();
    if answered != [text] {
        return fail("wrong answer", format!("{answered:?}"));
    }
    Ok(())
}
