//! One tool call's measurements: its outcome, and its time split into waiting in the queue
//! and running on a worker. The tracker of the call (`route::CallTracker`) drives it, so
//! both lanes and every way a call ends are counted in one place.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use bus_schema::names::PoolName;
use tokio::time::Instant;

use super::METRICS;

/// How a call ended, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A result.
    Result,
    /// A result with `isError: true`: the tool ran and failed.
    ToolError,
    /// A multi round-trip request asking the client for input (a round, not the end).
    InputRequired,
    /// A JSON-RPC error from the worker or the route.
    Error,
    /// The tool's deadline passed.
    Timeout,
    /// No live worker serves the tool.
    NoWorker,
    /// The client went away and the call was called off.
    Cancelled,
    /// The worker made the call a task; the task's states are counted from here.
    Task,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Result => "result",
            Outcome::ToolError => "tool_error",
            Outcome::InputRequired => "input_required",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::NoWorker => "no_worker",
            Outcome::Cancelled => "cancelled",
            Outcome::Task => "task",
        }
    }
}

/// At most this many `(pool, tool)` label sets per metric; later ones share
/// `tool="_other"`. Tool names come from workers, so a pool registering thousands of tools
/// (or renaming them all the time) must not grow every scrape without bound.
const MAX_LABEL_SETS: usize = 1000;

/// The tool label a call is counted under.
pub const OTHER_TOOL: &str = "_other";

static SEEN: LazyLock<Mutex<HashSet<(String, String)>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

/// The labels of `(pool, tool)`: as given while fewer than [`MAX_LABEL_SETS`] were seen.
fn labels(pool: &PoolName, tool: &str) -> [String; 2] {
    let key = (pool.as_str().to_owned(), tool.to_owned());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.contains(&key) || seen.len() < MAX_LABEL_SETS {
        seen.insert(key.clone());
        [key.0, key.1]
    } else {
        [key.0, OTHER_TOOL.to_owned()]
    }
}

/// The clock of one call, started when it is queued. A resumed stream has none: the call
/// was counted by the gateway that queued it.
#[derive(Debug)]
pub struct CallMeter {
    labels: [String; 2],
    queued: Instant,
    accepted: Option<Instant>,
    finished: bool,
}

impl CallMeter {
    pub fn start(pool: &PoolName, tool: &str) -> Self {
        Self {
            labels: labels(pool, tool),
            queued: Instant::now(),
            accepted: None,
            finished: false,
        }
    }

    /// A call refused before it was queued.
    pub fn refused(pool: &PoolName, tool: &str, outcome: Outcome) {
        let [pool, tool] = labels(pool, tool);
        METRICS
            .tool_calls
            .with_label_values(&[&pool, &tool, outcome.as_str()])
            .inc();
    }

    /// A worker accepted the call (the first time only: a rerun after a crash is still
    /// the same call, and its queue time ended at the first start).
    pub fn accepted(&mut self) {
        if self.accepted.is_none() {
            let now = Instant::now();
            self.accepted = Some(now);
            METRICS
                .call_queue_seconds
                .with_label_values(&self.label_refs())
                .observe(now.duration_since(self.queued).as_secs_f64());
        }
    }

    /// The call ended; only the first ending counts.
    pub fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let now = Instant::now();
        let [pool, tool] = self.label_refs();
        METRICS
            .tool_calls
            .with_label_values(&[pool, tool, outcome.as_str()])
            .inc();
        METRICS
            .call_seconds
            .with_label_values(&[pool, tool])
            .observe(now.duration_since(self.queued).as_secs_f64());
        if let Some(accepted) = self.accepted {
            METRICS
                .call_run_seconds
                .with_label_values(&[pool, tool])
                .observe(now.duration_since(accepted).as_secs_f64());
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn label_refs(&self) -> [&str; 2] {
        [&self.labels[0], &self.labels[1]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(pool: &str, tool: &str, outcome: Outcome) -> u64 {
        METRICS
            .tool_calls
            .with_label_values(&[pool, tool, outcome.as_str()])
            .get()
    }

    #[test]
    fn a_call_is_counted_once_with_its_queue_and_run_time() {
        let pool = PoolName::new("meter-once").unwrap();
        let mut m = CallMeter::start(&pool, "t");
        m.accepted();
        m.accepted();
        m.finish(Outcome::Result);
        m.finish(Outcome::Error);
        assert_eq!(count("meter-once", "t", Outcome::Result), 1);
        assert_eq!(count("meter-once", "t", Outcome::Error), 0);
        let queue = METRICS
            .call_queue_seconds
            .with_label_values(&["meter-once", "t"]);
        assert_eq!(queue.get_sample_count(), 1);
        let run = METRICS
            .call_run_seconds
            .with_label_values(&["meter-once", "t"]);
        assert_eq!(run.get_sample_count(), 1);
    }

    #[test]
    fn label_sets_are_capped() {
        let pool = PoolName::new("meter-cap").unwrap();
        for i in 0..MAX_LABEL_SETS + 5 {
            CallMeter::refused(&pool, &format!("tool-{i}"), Outcome::NoWorker);
        }
        // Other tests may have taken some of the room first; at least the last five
        // were folded into `_other`, and the cap holds.
        assert!(count("meter-cap", OTHER_TOOL, Outcome::NoWorker) >= 5);
        assert!(SEEN.lock().unwrap().len() <= MAX_LABEL_SETS);
    }
}
