//! Every NATS subject mcpbus uses. Nothing outside this crate formats a subject.
//!
//! All subjects start with `mcpbus.v1.`: the `v1` token is the wire protocol's major
//! version, so a future incompatible protocol can run side by side on the same server.

use crate::names::{InstanceId, PoolName};

/// Prefix shared by every mcpbus subject.
pub const ROOT: &str = "mcpbus.v1";

/// Subjects captured by the calls work-queue stream ([`crate::topology::CALLS_STREAM`]).
pub const CALLS_WILDCARD: &str = "mcpbus.v1.call.>";

/// Where gateways publish calls for one worker pool. Captured by the calls stream; the pool's
/// durable consumer filters on exactly this subject.
pub fn call(pool: &PoolName) -> String {
    format!("{ROOT}.call.{pool}")
}

/// The reply inbox of one call: workers publish progress, log and the final outcome here.
/// The gateway holding the client's HTTP request listens on [`gateway_replies`].
pub fn call_reply(gateway: &InstanceId, call_id: &str) -> String {
    format!("{ROOT}.reply.{gateway}.{call_id}")
}

/// The wildcard one gateway subscribes to for the replies of all its in-flight calls.
pub fn gateway_replies(gateway: &InstanceId) -> String {
    format!("{ROOT}.reply.{gateway}.>")
}

/// Recovers the call id from a subject made by [`call_reply`].
pub fn call_id_from_reply(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix(ROOT)?.strip_prefix(".reply.")?;
    let (_gateway, call_id) = rest.split_once('.')?;
    (!call_id.is_empty() && !call_id.contains('.')).then_some(call_id)
}

/// Subjects captured by the session events stream ([`crate::topology::EVENTS_STREAM`]).
pub const EVENTS_WILDCARD: &str = "mcpbus.v1.evt.>";

/// Where the events stream republishes what it stored, with `Nats-Sequence`.
pub const EVENTS_LIVE_WILDCARD: &str = "mcpbus.v1.live.>";

/// The stored events of one stream of one session (a request's SSE stream).
pub fn session_events(session: &str, stream: &str) -> String {
    format!("{ROOT}.evt.{session}.{stream}")
}

/// Every stored event of one session, for purging it when the session ends.
pub fn session_events_all(session: &str) -> String {
    format!("{ROOT}.evt.{session}.>")
}

/// Live copies of [`session_events`], republished by the stream with their sequence.
pub fn session_events_live(session: &str, stream: &str) -> String {
    format!("{ROOT}.live.{session}.{stream}")
}

/// Subjects captured by the broadcast stream ([`crate::topology::BROADCAST_STREAM`]).
pub const BROADCAST_WILDCARD: &str = "mcpbus.v1.bcast.>";

/// Where the broadcast stream republishes what it stored. Each gateway subscribes once.
pub const BROADCAST_LIVE_WILDCARD: &str = "mcpbus.v1.bcastlive.>";

/// Where a cluster-wide event of one kind is published.
pub fn broadcast(kind: &str) -> String {
    format!("{ROOT}.bcast.{kind}")
}

/// Cancels a call wherever it runs: the worker running `call_id` listens here (unless the
/// call names another subject in `cancel_on`); a gateway publishes an empty message.
pub fn cancel(call_id: &str) -> String {
    format!("{ROOT}.cancel.{call_id}")
}

/// Cancels the session-lane request `request_id` (its JSON-RPC id) of `session`: any gateway
/// that receives the client's `notifications/cancelled` can name it without knowing the call.
pub fn cancel_request(session: &str, request_id: &serde_json::Value) -> String {
    let id = crate::digest::digest([request_id.to_string()]);
    format!("{ROOT}.cancel.{session}.{id}")
}

/// Where a session's signals go ([`crate::messages::SessionSignal`]): stream replacement,
/// subscription changes, the session's end. Session ids are subject-safe by construction.
pub fn session_signal(session: &str) -> String {
    format!("{ROOT}.ssig.{session}")
}

/// Every session's signals: each gateway subscribes once.
pub const SESSION_SIGNALS_WILDCARD: &str = "mcpbus.v1.ssig.>";

/// The session a signal subject names.
pub fn session_from_signal(subject: &str) -> Option<&str> {
    let session = subject.strip_prefix(ROOT)?.strip_prefix(".ssig.")?;
    (!session.is_empty() && !session.contains('.')).then_some(session)
}

/// The events scope of a task: its calls' replies are stored like a session's request
/// streams, under [`session_events`]`(task_scope(task), call)`.
pub fn task_scope(task_id: &str) -> String {
    format!("task-{task_id}")
}

/// The NATS service-API name (`$SRV.PING/INFO/STATS`, `nats micro ls`) of a pool's workers:
/// replicas of one pool share it, each with its own id.
pub fn service_name(pool: &PoolName) -> String {
    format!("mcpbus-{pool}")
}

/// Every instance of a pool answers a ping here (NATS service API).
pub fn service_ping(pool: &PoolName) -> String {
    format!("$SRV.PING.{}", service_name(pool))
}

/// Where the client's answer to a worker's request (sampling, elicitation, roots) goes:
/// the worker that asked listens here; any gateway that receives the answer publishes it.
pub fn client_answer(call_id: &str, seq: u32) -> String {
    format!("{ROOT}.answer.{call_id}.{seq}")
}

/// KV key of one worker instance in the workers bucket.
pub fn worker_key(pool: &PoolName, instance: &InstanceId) -> String {
    format!("{pool}.{instance}")
}

/// KV key of one catalogue in the catalogue bucket. Catalogues are content-addressed, so two
/// replicas publishing the same catalogue write the same key.
pub fn catalog_key(pool: &PoolName, digest: &str) -> String {
    format!("{pool}.{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subject_round_trips() {
        let gw = InstanceId::new("gw1").unwrap();
        let s = call_reply(&gw, "abc123");
        assert_eq!(call_id_from_reply(&s), Some("abc123"));
        assert_eq!(call_id_from_reply("mcpbus.v1.reply.gw1"), None);
        assert_eq!(call_id_from_reply("other.v1.reply.gw1.x"), None);
        assert!(gateway_replies(&gw).ends_with(".>"));
    }

    #[test]
    fn call_subject_is_inside_the_stream_wildcard() {
        let s = call(&PoolName::new("demo").unwrap());
        assert!(s.starts_with(CALLS_WILDCARD.trim_end_matches('>')));
    }
}
