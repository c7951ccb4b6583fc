//! A worker that counts what it runs (issue 15): how fault tests tell a call that ran twice
//! from one that ran once. `echo` cannot: its answer is the same either way.
//!
//! It runs in the test's own process, on the Rust SDK, as pool `counted` with one tool,
//! `counted_echo`: it returns its `text` and records which JetStream delivery of the call
//! ran. The tool is idempotent, like `echo`, so a delivery that was lost with a NATS node is
//! run again once JetStream redelivers it (PROTOCOL §5.3): an expected second run, counted
//! apart. A second *first* delivery of one text is a silent double run: the call was stored
//! or delivered twice, which nothing may do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use bus_schema::connect::{connect, NatsOptions};
use bus_schema::names::PoolName;
use bus_schema::subjects;
use mcpbus_worker_sdk::{CallContext, ToolDef, Worker};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::Cluster;

pub const POOL: &str = "counted";
pub const TOOL: &str = "counted_echo";

/// Text → the delivery number of every run of it.
type Runs = Arc<Mutex<BTreeMap<String, Vec<u64>>>>;

/// What the counted worker ran.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunCount {
    /// Distinct texts run.
    pub texts: usize,
    /// Texts whose first delivery ran more than once: stored or delivered twice.
    pub silent_repeats: usize,
    /// Runs of a later delivery: a delivery lost with its node, run again (allowed for an
    /// idempotent tool; reported so that the window is known).
    pub redelivered: usize,
}

/// A running counted worker; dropping it stops it.
pub struct Counted {
    runs: Runs,
    stop: Option<oneshot::Sender<()>>,
}

impl Counted {
    /// Starts the worker on `cluster`'s NATS as its pool's user, with every seed, and waits
    /// until every gateway lists its tool.
    pub async fn start(cluster: &Cluster) -> Result<Self> {
        let pool = PoolName::new(POOL).expect("a valid pool name");
        let options = NatsOptions::new(&cluster.nats.worker_url(POOL))
            .map_err(|e| anyhow!("{e}"))?
            .with_inbox_prefix(subjects::worker_inbox_prefix(&pool));
        let nats = connect(&options, "counted-worker").await?;
        let runs = Runs::default();
        let recorded = runs.clone();
        let tool = ToolDef::raw(TOOL, move |ctx: CallContext, args: Value| {
            let recorded = recorded.clone();
            async move {
                let text = args["text"].as_str().unwrap_or_default().to_owned();
                recorded
                    .lock()
                    .expect("not poisoned")
                    .entry(text.clone())
                    .or_default()
                    .push(ctx.delivery());
                Ok(text)
            }
        })
        .input_schema_value(json!({
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"]
        }))
        .annotations(json!({"readOnlyHint": true, "idempotentHint": true}));
        let (stop, stopped) = oneshot::channel::<()>();
        let worker = Worker::new(POOL).tool(tool);
        tokio::spawn(async move {
            if let Err(e) = worker
                .run(nats, async {
                    let _ = stopped.await;
                })
                .await
            {
                eprintln!("counted worker stopped: {e}");
            }
        });
        cluster
            .wait_for_listed(TOOL, Duration::from_secs(60))
            .await?;
        Ok(Self {
            runs,
            stop: Some(stop),
        })
    }

    /// What ran so far.
    pub fn count(&self) -> RunCount {
        count(&self.runs.lock().expect("not poisoned"))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn count(runs: &BTreeMap<String, Vec<u64>>) -> RunCount {
    let mut c = RunCount {
        texts: runs.len(),
        ..RunCount::default()
    };
    for deliveries in runs.values() {
        if deliveries.iter().filter(|&&d| d == 1).count() > 1 {
            c.silent_repeats += 1;
        }
        c.redelivered += deliveries.iter().filter(|&&d| d > 1).count();
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_first_delivery_is_a_silent_repeat_and_a_later_delivery_is_not() {
        let runs: BTreeMap<String, Vec<u64>> = [
            ("once".to_owned(), vec![1]),
            ("stored twice".to_owned(), vec![1, 1]),
            ("lost and redelivered".to_owned(), vec![2]),
            ("ran, then redelivered".to_owned(), vec![1, 2]),
        ]
        .into();
        assert_eq!(
            count(&runs),
            RunCount {
                texts: 4,
                silent_repeats: 1,
                redelivered: 2
            }
        );
    }
}
