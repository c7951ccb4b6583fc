//! Calls that run, on both lanes: replies in order (`accepted`, then progress and log, then
//! one final reply), durable ids, and an ACK at the end.

use bus_schema::messages::CallEvent;
use serde_json::json;

use super::call::{CallSpec, Route};
use super::expect::{self, Check};
use super::kit::Kit;
use super::observe::AckKind;

/// `kit_once` on the stateless lane: accepted, the text back, ACK.
pub async fn call_stateless(kit: &Kit) -> Check {
    let (sent, t) = kit
        .run(&CallSpec::tool("kit_once", json!({"text": "hello kit"})))
        .await?;
    expect::all([
        expect::ran(&t),
        expect::tool_result(&t, Some("hello kit"), false),
        expect::settled(&t, AckKind::Ack, 1),
        expect::msg_ids(&t, &sent, 1),
    ])
}

/// `kit_echo` on the session lane: the same, stored with ids `<call>:1:0`, `<call>:1:1`.
pub async fn call_session(kit: &Kit) -> Check {
    let spec = CallSpec::tool("kit_echo", json!({"text": "hello session"})).durable();
    let (sent, t) = kit.run(&spec).await?;
    expect::all([
        expect::ran(&t),
        expect::tool_result(&t, Some("hello session"), false),
        expect::msg_ids(&t, &sent, 1),
        expect::settled(&t, AckKind::Ack, 1),
    ])
}

const STEPS: u64 = 3;

fn progress_call() -> CallSpec {
    CallSpec::tool("kit_progress", json!({"steps": STEPS, "delay_ms": 50}))
}

/// `kit_progress` with a progressToken on the session lane: progress 1..=steps increasing,
/// with the total, then the log line, then `done <steps>`; ids 0..=steps+2.
pub async fn progress(kit: &Kit) -> Check {
    let spec = progress_call()
        .progress_token(json!("kit-progress"))
        .durable();
    let (sent, t) = kit.run(&spec).await?;
    expect::ran(&t)?;
    let mut last = 0.0;
    let mut seen = 0;
    for reply in &t.replies {
        if let Some(CallEvent::Progress {
            progress, total, ..
        }) = reply.event()
        {
            if *progress <= last {
                return Err(format!(
                    "progress {progress} after {last}: it must increase"
                ));
            }
            if *total != Some(STEPS as f64) {
                return Err(format!("progress total {total:?}, want {STEPS}"));
            }
            (last, seen) = (*progress, seen + 1);
        }
    }
    if seen != STEPS {
        return Err(format!(
            "{seen} progress replies, want {STEPS} ({})",
            t.kinds()
        ));
    }
    expect::all([
        expect::tool_result(&t, Some(&format!("done {STEPS}")), false),
        expect::msg_ids(&t, &sent, 1),
        expect::settled(&t, AckKind::Ack, 1),
    ])
}

/// `kit_progress` without a progressToken on the stateless lane: no progress, but the log
/// reply (level info, logger kit, data "progress done") before the result.
pub async fn log(kit: &Kit) -> Check {
    let (_, t) = kit.run(&progress_call()).await?;
    expect::ran(&t)?;
    if t.replies.iter().any(|r| r.kind() == "progress") {
        return Err(format!(
            "progress sent without a progressToken: {}",
            t.kinds()
        ));
    }
    let logs: Vec<_> = t
        .replies
        .iter()
        .filter_map(|r| match r.event() {
            Some(CallEvent::Log {
                level,
                logger,
                data,
            }) => Some((level, logger, data)),
            _ => None,
        })
        .collect();
    let [(level, logger, data)] = logs[..] else {
        return Err(format!("want one log reply, got: {}", t.kinds()));
    };
    // `logger` is optional in the protocol; when present it must be the contract's.
    if level != "info"
        || *data != json!("progress done")
        || logger.as_deref().is_some_and(|l| l != "kit")
    {
        return Err(format!(
            "want log level info, logger kit, data \"progress done\"; got {level}, {logger:?}, {data}"
        ));
    }
    expect::all([
        expect::tool_result(&t, Some(&format!("done {STEPS}")), false),
        expect::settled(&t, AckKind::Ack, 1),
    ])
}

/// `kit_fail`: a tool error (a result with isError), ACKed.
pub async fn tool_error(kit: &Kit) -> Check {
    for route in Route::BOTH {
        let spec = CallSpec::tool("kit_fail", json!({"message": "kit says no"})).on(route);
        let (sent, t) = kit.run(&spec).await?;
        expect::all([
            expect::ran(&t),
            expect::tool_result(&t, Some("kit says no"), true),
            expect::msg_ids(&t, &sent, 1),
            expect::settled(&t, AckKind::Ack, 1),
        ])
        .map_err(|e| format!("{} lane: {e}", route.name()))?;
    }
    Ok(())
}

/// Arguments that do not fit the inputSchema: a tool error (after `accepted`, which a worker
/// may leave out for a call that answers at once: PROTOCOL §5.2), ACKed.
pub async fn invalid_arguments(kit: &Kit) -> Check {
    for route in Route::BOTH {
        let spec = CallSpec::tool("kit_echo", json!({"text": 42})).on(route);
        let (sent, t) = kit.run(&spec).await?;
        expect::all([
            expect::ran(&t),
            expect::tool_result(&t, None, true),
            expect::msg_ids(&t, &sent, 1),
            expect::settled(&t, AckKind::Ack, 1),
        ])
        .map_err(|e| format!("{} lane: {e}", route.name()))?;
        if t.replies.len() > 2 {
            return Err(format!(
                "{} lane: want the result, after `accepted` or alone, got: {}",
                route.name(),
                t.kinds()
            ));
        }
    }
    Ok(())
}
