//! Calls that stop early (PROTOCOL.md §5.8 and §5.6): cancelled through the call's cancel
//! subject (`cancel_on` when it names one, else the pool's subject for the call), or past
//! their deadline while running. Either way nothing more is sent and the message is ACKed
//! once the handler stopped.

use std::time::Duration;

use bus_schema::subjects;
use serde_json::json;

use super::call::{CallSpec, Sent};
use super::expect::{self, Check};
use super::kit::{Kit, REPLY_WITHIN, SETTLE_WITHIN};
use super::observe::{AckKind, Trace};

/// Long enough that only a cancellation or the deadline ends it within the check.
fn slow() -> CallSpec {
    CallSpec::tool("kit_slow", json!({"ms": 20_000}))
}

/// Time for the worker to subscribe to the cancel subject after `accepted`: the contract
/// asks for it before the handler runs, not before `accepted` is sent.
const SUBSCRIBE_GRACE: Duration = Duration::from_millis(300);

fn stopped_quietly(t: &Trace) -> Check {
    if t.replies.iter().any(|r| r.kind() != "accepted") {
        return Err(format!(
            "nothing may follow `accepted` once stopped, got: {}",
            t.kinds()
        ));
    }
    match t.settled() {
        None => Err(format!("not settled within {SETTLE_WITHIN:?} of stopping")),
        Some(_) => expect::settled(t, AckKind::Ack, 1),
    }
}

async fn cancel_through(kit: &Kit, spec: CallSpec, subject: impl Fn(&Sent) -> String) -> Check {
    let sent = kit.send(&spec).await?;
    kit.until_accepted(&sent, REPLY_WITHIN).await?;
    tokio::time::sleep(SUBSCRIBE_GRACE).await;
    kit.bus
        .cancel(subject(&sent))
        .await
        .map_err(|e| format!("the kit could not publish the cancellation: {e}"))?;
    stopped_quietly(&kit.until_settled(&sent, SETTLE_WITHIN).await)
}

/// A stateless call without `cancel_on`: cancelled on `mcpbus.v2.cancel.<pool>.<call_id>`.
pub async fn cancel(kit: &Kit) -> Check {
    let pool = kit.bus.pool.clone();
    cancel_through(kit, slow(), |s| subjects::cancel(&pool, &s.call_id)).await
}

/// A session call with `cancel_on`: cancelled there.
pub async fn cancel_on(kit: &Kit) -> Check {
    let spec = slow().durable().with_cancel_on();
    cancel_through(kit, spec, |s| {
        s.request
            .cancel_on
            .clone()
            .expect("a session call with cancel_on")
    })
    .await
}

/// The deadline passes while the call runs: nothing more, ACK.
pub async fn deadline_during_call(kit: &Kit) -> Check {
    let deadline_ms = 1500;
    let sent = kit.send(&slow().deadline_in_ms(deadline_ms)).await?;
    kit.until_accepted(&sent, REPLY_WITHIN).await?;
    let within = Duration::from_millis(deadline_ms as u64) + SETTLE_WITHIN;
    stopped_quietly(&kit.until_settled(&sent, within).await)
}
