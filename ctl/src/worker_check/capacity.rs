//! A full worker pulls no more than it can run (PROTOCOL.md §5.8, "worker full"): with
//! `max_in_flight` calls running, the next one stays queued until a slot frees.

use std::time::Duration;

use serde_json::json;

use super::call::CallSpec;
use super::expect::{self, Check};
use super::kit::Kit;
use super::observe::AckKind;

const SLOW_MS: u64 = 1500;

/// Sends `max_in_flight + 1` slow calls: at most `max_in_flight` are accepted before the
/// first finishes, and the extra one still completes.
pub async fn full_worker(kit: &Kit) -> Check {
    let max = kit
        .max_in_flight()
        .ok_or("the worker did not register its max_in_flight")? as usize;
    let spec = CallSpec::tool("kit_slow", json!({"ms": SLOW_MS}));
    let mut sent = Vec::with_capacity(max + 1);
    for _ in 0..=max {
        sent.push(kit.send(&spec).await?);
    }
    // Two rounds of slow calls, and time to start.
    let within = Duration::from_millis(2 * SLOW_MS) + Duration::from_secs(5);
    let traces = futures::future::join_all(sent.iter().map(|s| kit.finish(s, within))).await;
    // Stateless replies of every call arrive on one subscription, in the order the worker
    // sent them: the log's order says which calls started before the first one finished.
    let accepted_before_first_result = kit.recorder.accepted_before_first_result(&sent);
    let finished = traces.iter().any(|t| t.final_reply().is_some());
    if finished && accepted_before_first_result > max {
        return Err(format!(
            "{accepted_before_first_result} calls accepted before the first finished; max_in_flight is {max}"
        ));
    }
    for (i, t) in traces.iter().enumerate() {
        expect::all([
            expect::ran(t),
            expect::tool_result(t, Some(&format!("slept {SLOW_MS}")), false),
            expect::settled(t, AckKind::Ack, 1),
        ])
        .map_err(|e| format!("call {} of {}: {e}", i + 1, max + 1))?;
    }
    Ok(())
}
