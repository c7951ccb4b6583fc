//! Redelivered calls (PROTOCOL.md §5.8): an idempotent tool runs again as a new attempt
//! whose durable ids carry delivery 2; any other answers `worker_lost` without running.
//!
//! Delivery 2 is produced deterministically, without crashing anything: before the worker
//! starts, the kit queues the two calls, takes them itself from the pool's consumer and NAKs
//! them, so the worker's first pull receives them with delivery count 2 (ADR 0018).

use std::time::Duration;

use async_nats::jetstream::AckKind as Settle;
use bus_schema::mcp::code::INTERNAL_ERROR;
use bus_schema::messages::CallRequest;
use bus_schema::refusal::reason;
use futures::StreamExt;
use serde_json::json;

use super::bus::Bus;
use super::call::{CallSpec, Sent};
use super::expect::{self, Check};
use super::kit::{Kit, REPLY_WITHIN};
use super::observe::AckKind;

/// The two calls, queued and delivered once; or why the kit could not prepare them.
pub struct Prepared {
    idempotent: Result<Sent, String>,
    once: Result<Sent, String>,
}

/// How long the kit's own pull may take.
const PULL_WITHIN: Duration = Duration::from_secs(3);

/// Queues a `kit_echo` and a `kit_once` on the session lane and bounces them once.
pub async fn prepare(bus: &Bus) -> Prepared {
    // The worker starts after this; the deadline leaves it time to.
    let spec = |tool: &str| {
        CallSpec::tool(tool, json!({"text": "again"}))
            .durable()
            .deadline_in_ms(60_000)
    };
    let idempotent = Sent::queue(bus, &spec("kit_echo")).await;
    let once = Sent::queue(bus, &spec("kit_once")).await;
    if let Err(e) = bounce(bus, 2).await {
        let why = format!("the kit could not deliver the call once itself: {e}");
        return Prepared {
            idempotent: Err(why.clone()),
            once: Err(why),
        };
    }
    Prepared { idempotent, once }
}

/// Pulls `n` calls from the pool's consumer and NAKs them.
async fn bounce(bus: &Bus, n: usize) -> Result<(), String> {
    let mut batch = bus
        .consumer
        .fetch()
        .max_messages(n)
        .expires(PULL_WITHIN)
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    let mut bounced = 0;
    while bounced < n {
        let msg = match tokio::time::timeout(PULL_WITHIN, batch.next()).await {
            Ok(Some(Ok(msg))) => msg,
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) | Err(_) => return Err(format!("pulled {bounced} of {n} calls")),
        };
        serde_json::from_slice::<CallRequest>(&msg.payload)
            .map_err(|e| format!("the queue held something else than the kit's calls: {e}"))?;
        msg.ack_with(Settle::Nak(None))
            .await
            .map_err(|e| e.to_string())?;
        bounced += 1;
    }
    bus.client.flush().await.map_err(|e| e.to_string())
}

/// The idempotent call ran again: accepted, result, ids `<call>:2:<n>`, ACK of delivery 2.
pub async fn idempotent(kit: &Kit, prepared: &Prepared) -> Check {
    let sent = prepared.idempotent.as_ref().map_err(Clone::clone)?;
    let t = kit.finish(sent, REPLY_WITHIN).await;
    expect::all([
        expect::ran(&t),
        expect::tool_result(&t, Some("again"), false),
        expect::msg_ids(&t, sent, 2),
        expect::settled(&t, AckKind::Ack, 2),
    ])
}

/// The other was refused: error -32603 `worker_lost` naming the tool, id `<call>:2:0`, TERM.
pub async fn not_idempotent(kit: &Kit, prepared: &Prepared) -> Check {
    let sent = prepared.once.as_ref().map_err(Clone::clone)?;
    let t = kit.finish(sent, REPLY_WITHIN).await;
    expect::not_accepted(&t)?;
    let error = expect::error(&t, INTERNAL_ERROR, reason::WORKER_LOST)?;
    expect::all([
        expect::data_field(error, "tool", &json!("kit_once")),
        expect::msg_ids(&t, sent, 2),
        expect::settled(&t, AckKind::Term, 2),
    ])
}
