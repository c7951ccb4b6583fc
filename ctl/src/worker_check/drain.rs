//! Drain (PROTOCOL.md §4.3): SIGTERM, or with `--drain-by bus` a message on the instance's
//! drain subject (what `mcpbusctl drain` sends), while a call runs. The call completes with
//! its result and is ACKed (never NAKed: a NAK turns a non-idempotent call into
//! `worker_lost`), the worker record is deleted, and the process exits 0.

use std::time::Duration;

use serde_json::json;

use super::call::CallSpec;
use super::expect::{self, Check};
use super::kit::{Kit, REPLY_WITHIN};
use super::launch::WorkerProcess;
use super::observe::AckKind;
use super::registration::{self, RecordWatch};

const SLOW_MS: u64 = 2000;

/// How long after its last call a draining worker may take to exit: its open pull request
/// ends by itself within 5 s (contract E.1), then it deregisters and closes.
const EXIT_WITHIN: Duration = Duration::from_secs(12);

/// What asks the worker to drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DrainBy {
    /// SIGTERM to the worker's process group.
    Signal,
    /// An empty message on `mcpbus.v2.drain.<pool>.<instance>`.
    Bus,
}

impl DrainBy {
    /// The name of the check in the report.
    pub fn check_name(self) -> &'static str {
        match self {
            DrainBy::Signal => "drain",
            DrainBy::Bus => "drain_request",
        }
    }
}

pub async fn drain(
    kit: &Kit,
    worker: &mut WorkerProcess,
    records: &RecordWatch,
    by: DrainBy,
) -> Check {
    let sent = kit
        .send(&CallSpec::tool("kit_slow", json!({"ms": SLOW_MS})))
        .await?;
    kit.until_accepted(&sent, REPLY_WITHIN).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    match by {
        DrainBy::Signal => worker.terminate(),
        DrainBy::Bus => {
            let subject = bus_schema::subjects::drain(&kit.bus.pool, &kit.instance);
            let client = &kit.bus.client;
            client
                .publish(subject, "".into())
                .await
                .map_err(|e| format!("publishing the drain request: {e}"))?;
            client
                .flush()
                .await
                .map_err(|e| format!("publishing the drain request: {e}"))?;
        }
    }
    let t = kit
        .finish(&sent, Duration::from_millis(SLOW_MS) + REPLY_WITHIN)
        .await;
    let mut problems = Vec::new();
    // Each rule on its own: a NAK is worth naming even when the result is missing too.
    let settled = expect::settled(&t, AckKind::Ack, 1);
    let answered = expect::ran(&t)
        .and_then(|()| expect::tool_result(&t, Some(&format!("slept {SLOW_MS}")), false));
    for e in [settled, answered].into_iter().filter_map(Result::err) {
        problems.push(format!("the call running at the drain request: {e}"));
    }
    match worker.wait(EXIT_WITHIN).await {
        None => problems.push(format!(
            "the worker did not exit within {EXIT_WITHIN:?} of its last call"
        )),
        Some(status) if !status.success() => {
            problems.push(format!("the worker exited with {status}, want 0"))
        }
        Some(_) => {}
    }
    if !records.deleted(Duration::from_secs(1)).await {
        problems.push("the worker record was not deleted".to_owned());
    }
    let heartbeat_ms = kit.registered.as_ref().map(|r| r.record.heartbeat_ms);
    if let (Some(gap), Some(ms)) = (records.last_put_before_delete(), heartbeat_ms) {
        if gap > registration::beat_bound(ms) {
            problems.push(format!(
                "the record was last put {gap:?} before its delete: heartbeats stop only when the calls are done"
            ));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("; ")),
    }
}
