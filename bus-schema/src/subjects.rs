//! Every NATS subject mcpbus uses. Nothing outside this crate formats a subject.
//!
//! All subjects start with `mcpbus.v2.`: the `v2` token is the wire protocol's major
//! version, so a future incompatible protocol can run side by side on the same server.
//!
//! Version 2 shapes every subject a worker touches so that a NATS permission can confine a
//! worker of pool `P` to its own calls (ADR 0013): the pool is the token right after the
//! kind (`call.P`, `reply.P.…`, `evt.P.…`, `cancel.P.…`, `answer.P.…`), and no subject a
//! worker sees names a session: sessions and tasks appear only as a one-way [`scope_token`].
//! [`crate::permissions`] derives each role's allow-lists from the functions here.

use crate::names::{InstanceId, PoolName};

/// Prefix shared by every mcpbus subject.
pub const ROOT: &str = "mcpbus.v2";

/// Subjects captured by the calls work-queue stream ([`crate::topology::CALLS_STREAM`]).
pub const CALLS_WILDCARD: &str = "mcpbus.v2.call.>";

/// Where gateways publish calls for one worker pool. Captured by the calls stream; the pool's
/// durable consumer filters on exactly this subject.
pub fn call(pool: &PoolName) -> String {
    format!("{ROOT}.call.{pool}")
}

/// The reply inbox of one call: workers publish progress, log and the final outcome here.
/// The gateway holding the client's HTTP request listens on [`gateway_replies`].
pub fn call_reply(pool: &PoolName, gateway: &InstanceId, call_id: &str) -> String {
    format!("{ROOT}.reply.{pool}.{gateway}.{call_id}")
}

/// The wildcard one gateway subscribes to for the replies of all its in-flight calls, from
/// any pool.
pub fn gateway_replies(gateway: &InstanceId) -> String {
    format!("{ROOT}.reply.*.{gateway}.>")
}

/// The pool and call id of a subject made by [`call_reply`]. The gateway checks the pool
/// against the call's: a worker may only answer calls routed to its own pool.
pub fn parse_reply(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix(ROOT)?.strip_prefix(".reply.")?;
    let mut tokens = rest.split('.');
    let (pool, _gateway, call_id) = (tokens.next()?, tokens.next()?, tokens.next()?);
    let valid = tokens.next().is_none() && !pool.is_empty() && !call_id.is_empty();
    valid.then_some((pool, call_id))
}

/// Subjects captured by the session events stream ([`crate::topology::EVENTS_STREAM`]).
pub const EVENTS_WILDCARD: &str = "mcpbus.v2.evt.>";

/// Where the events stream republishes what it stored, with `Nats-Sequence`.
pub const EVENTS_LIVE_WILDCARD: &str = "mcpbus.v2.live.>";

/// The subject token that stands for a session (or a task's scope) in the events subjects:
/// SHA-256 of it, truncated to 128 bits. Workers publish to these subjects, so they must
/// not learn the session id itself, which would let them use the session (ADR 0013); the
/// token is one-way, and as unguessable as the session id it hides.
pub fn scope_token(scope: &str) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, scope.as_bytes());
    hash.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The stored events of one stream (a request's SSE stream, or a task's call) of `scope`,
/// whose call runs in `pool`.
pub fn session_events(pool: &PoolName, scope: &str, stream: &str) -> String {
    format!("{ROOT}.evt.{pool}.{}.{stream}", scope_token(scope))
}

/// Like [`session_events`] when the pool is not known yet (a resumed stream, before its
/// first record is read): matches the stream whatever pool runs it.
pub fn session_events_any_pool(scope: &str, stream: &str) -> String {
    format!("{ROOT}.evt.*.{}.{stream}", scope_token(scope))
}

/// Every stored event of one session, for purging it when the session ends.
pub fn session_events_all(scope: &str) -> String {
    format!("{ROOT}.evt.*.{}.>", scope_token(scope))
}

/// Live copies of the events of one stream, republished by the stream with their sequence,
/// whatever pool runs it.
pub fn session_events_live(scope: &str, stream: &str) -> String {
    format!("{ROOT}.live.*.{}.{stream}", scope_token(scope))
}

/// The key a gateway files one stream's live copies under, whatever pool runs it: the part
/// of [`session_events_live`] after the pool, as [`live_event_key`] reads it back. Every
/// gateway follows all live copies on one subscription to [`EVENTS_LIVE_WILDCARD`] and
/// hands each to the streams open under its key (ADR 0025).
pub fn session_events_live_key(scope: &str, stream: &str) -> String {
    format!("{}.{stream}", scope_token(scope))
}

/// The stream key ([`session_events_live_key`]) of a live copy's subject, whatever its pool.
pub fn live_event_key(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix(ROOT)?.strip_prefix(".live.")?;
    let (pool, key) = rest.split_once('.')?;
    (!pool.is_empty() && !key.is_empty()).then_some(key)
}

/// Live copies of every stream of `scope`, whatever pool runs them: what the worker kit
/// (`mcpbusctl worker-check`, ADR 0018) watches for the durable replies of the calls it
/// sends under one made-up session.
pub fn session_events_live_all(scope: &str) -> String {
    format!("{ROOT}.live.*.{}.>", scope_token(scope))
}

/// Subjects captured by the broadcast stream ([`crate::topology::BROADCAST_STREAM`]).
pub const BROADCAST_WILDCARD: &str = "mcpbus.v2.bcast.>";

/// Where the broadcast stream republishes what it stored. Each gateway subscribes once.
pub const BROADCAST_LIVE_WILDCARD: &str = "mcpbus.v2.bcastlive.>";

/// Where a cluster-wide event of one kind is published.
pub fn broadcast(kind: &str) -> String {
    format!("{ROOT}.bcast.{kind}")
}

/// Where a worker of `pool` asks for a server-wide message (ADR 0023); one gateway of the
/// [`ANNOUNCE_QUEUE`] group answers. The pool token is what the message is attributed to,
/// and NATS permissions keep a worker to its own (ADR 0013).
pub fn announce(pool: &PoolName) -> String {
    format!("{ROOT}.announce.{pool}")
}

/// Every pool's announcement requests: gateways subscribe in [`ANNOUNCE_QUEUE`].
pub const ANNOUNCE_WILDCARD: &str = "mcpbus.v2.announce.*";

/// The queue group in which gateways take announcement requests: one gateway each.
pub const ANNOUNCE_QUEUE: &str = "mcpbus-gateways";

/// The pool an announcement request came from.
pub fn pool_from_announce(subject: &str) -> Option<&str> {
    subject.strip_prefix("mcpbus.v2.announce.")
}

/// Cancels a call of `pool` wherever it runs: the worker running `call_id` listens here
/// (unless the call names another subject in `cancel_on`); a gateway publishes an empty
/// message.
pub fn cancel(pool: &PoolName, call_id: &str) -> String {
    format!("{ROOT}.cancel.{pool}.{call_id}")
}

/// Cancels the session-lane request `request_id` (its JSON-RPC id) of `session`, if it runs
/// in `pool`: any gateway that receives the client's `notifications/cancelled` can name it
/// without knowing the call. It publishes to every pool, since it does not know which one
/// runs the request; the token hides the session from the workers.
pub fn cancel_request(pool: &PoolName, session: &str, request_id: &serde_json::Value) -> String {
    let token = scope_token(&format!("{session} {request_id}"));
    format!("{ROOT}.cancel.{pool}.{token}")
}

/// Every cancellation of every pool: each gateway's own streams watch the ones they name.
pub const CANCEL_WILDCARD: &str = "mcpbus.v2.cancel.>";

/// Where a session's signals go ([`crate::messages::SessionSignal`]): stream replacement,
/// subscription changes, the session's end. Session ids are subject-safe by construction.
pub fn session_signal(session: &str) -> String {
    format!("{ROOT}.ssig.{session}")
}

/// Every session's signals: each gateway subscribes once.
pub const SESSION_SIGNALS_WILDCARD: &str = "mcpbus.v2.ssig.>";

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
/// the worker of `pool` that asked listens here; any gateway that receives the answer
/// publishes it.
pub fn client_answer(pool: &PoolName, call_id: &str, seq: u32) -> String {
    format!("{ROOT}.answer.{pool}.{call_id}.{seq}")
}

/// Asks one worker instance of `pool` to drain and leave, as SIGTERM does (PROTOCOL.md
/// §4.3): stop pulling, finish running calls, delete its record, exit. The operator
/// (`mcpbusctl drain`) publishes an empty message; the instance listens on its own subject.
/// The pool is the token after the kind, so that a pool's permission covers only its own
/// instances (ADR 0013); instance names are subject-safe by construction.
pub fn drain(pool: &PoolName, instance: &InstanceId) -> String {
    format!("{ROOT}.drain.{pool}.{instance}")
}

/// Every drain request of `pool`'s instances: what a worker of `pool` may subscribe to.
pub fn pool_drains(pool: &PoolName) -> String {
    format!("{ROOT}.drain.{pool}.*")
}

/// Where a worker instance of `pool` that says so in its record (`WorkerRecord::alive_subscription`)
/// holds a subscription for as long as its NATS connection lives (PROTOCOL.md §4.2, ADR
/// 0029). Gateways publish an empty probe here with a reply subject: the server answers
/// "no responders" at once when nobody is subscribed, i.e. when the instance's connection is
/// gone. The instance need not answer.
pub fn alive(pool: &PoolName, instance: &InstanceId) -> String {
    format!("{ROOT}.alive.{pool}.{instance}")
}

/// Every liveness subject of `pool`'s instances: what a worker of `pool` may subscribe to.
pub fn pool_alive(pool: &PoolName) -> String {
    format!("{ROOT}.alive.{pool}.*")
}

/// Every liveness subject: what gateways may probe.
pub const ALIVE_WILDCARD: &str = "mcpbus.v2.alive.>";

/// The reply subject of a gateway's liveness probe (in its own inbox, where only the server's
/// "no responders" status comes back): what was probed, so that a status needs no state to
/// be understood. `stage` tells a first probe from its confirmation.
pub fn alive_probe_reply(
    gateway: &InstanceId,
    stage: &str,
    revision: u64,
    pool: &PoolName,
    instance: &InstanceId,
) -> String {
    format!("{GATEWAY_INBOX_PREFIX}.{gateway}.alive.{stage}.{revision}.{pool}.{instance}")
}

/// What one gateway subscribes to for the answers to its liveness probes.
pub fn alive_probe_replies(gateway: &InstanceId) -> String {
    format!("{GATEWAY_INBOX_PREFIX}.{gateway}.alive.>")
}

/// The stage, revision, pool and instance a subject made by [`alive_probe_reply`] names.
pub fn parse_alive_probe_reply(subject: &str) -> Option<(&str, u64, &str, &str)> {
    let rest = subject
        .strip_prefix(GATEWAY_INBOX_PREFIX)?
        .strip_prefix('.')?;
    let mut tokens = rest.split('.');
    let (_gateway, kind) = (tokens.next()?, tokens.next()?);
    let (stage, revision) = (tokens.next()?, tokens.next()?.parse().ok()?);
    let (pool, instance) = (tokens.next()?, tokens.next()?);
    let valid =
        kind == "alive" && tokens.next().is_none() && !pool.is_empty() && !instance.is_empty();
    valid.then_some((stage, revision, pool, instance))
}

/// Every drain request of every pool: what the operator may publish.
pub const DRAIN_WILDCARD: &str = "mcpbus.v2.drain.>";

/// Every subject a worker of `pool` may publish replies on (ADR 0013).
pub fn pool_replies(pool: &PoolName) -> String {
    format!("{ROOT}.reply.{pool}.>")
}

/// Every stored-event subject a worker of `pool` may publish on.
pub fn pool_events(pool: &PoolName) -> String {
    format!("{ROOT}.evt.{pool}.>")
}

/// Every cancellation of `pool`'s calls.
pub fn pool_cancels(pool: &PoolName) -> String {
    format!("{ROOT}.cancel.{pool}.>")
}

/// Whether `subject` is one of `pool`'s cancellations, so that [`pool_cancels`] receives it:
/// a worker listens on that one subscription instead of one per call (ADR 0026).
pub fn is_pool_cancel(pool: &PoolName, subject: &str) -> bool {
    subject
        .strip_prefix(ROOT)
        .and_then(|s| s.strip_prefix(".cancel."))
        .and_then(|s| s.strip_prefix(pool.as_str()))
        .and_then(|s| s.strip_prefix('.'))
        .is_some_and(|rest| !rest.is_empty())
}

/// Every client answer for `pool`'s calls.
pub fn pool_answers(pool: &PoolName) -> String {
    format!("{ROOT}.answer.{pool}.>")
}

/// Every client answer: gateways publish these, and only a pool's workers subscribe.
pub const ANSWER_WILDCARD: &str = "mcpbus.v2.answer.>";

/// Every reply of every call: gateways subscribe to theirs under it.
pub const REPLY_WILDCARD: &str = "mcpbus.v2.reply.>";

/// The inbox prefix of gateways' connections (request replies, JetStream acks, KV watches).
/// Each role has its own, so that no role may read another's replies (ADR 0013).
pub const GATEWAY_INBOX_PREFIX: &str = "_INBOX.gw";

/// The inbox prefix of the workers of `pool`.
pub fn worker_inbox_prefix(pool: &PoolName) -> String {
    format!("{WORKER_INBOXES}.{pool}")
}

/// Where every worker inbox lives: `<this>.<pool>.…`.
pub const WORKER_INBOXES: &str = "_INBOX.pool";

/// Where NATS service-API pings (`$SRV.PING.mcpbus-<pool>`) must ask for their answers:
/// the only subjects a worker may answer on besides its own pool's (ADR 0013). Operators
/// give it to their tools: `nats --inbox-prefix _INBOX.srv micro ls`.
pub const SERVICE_REPLY_PREFIX: &str = "_INBOX.srv";

/// The inbox prefix of the operator's tools (`mcpbusctl`).
pub const ADMIN_INBOX_PREFIX: &str = "_INBOX.admin";

/// KV key of one worker instance in the workers bucket.
pub fn worker_key(pool: &PoolName, instance: &InstanceId) -> String {
    format!("{pool}.{instance}")
}

/// What every key [`worker_key`] makes for `pool` starts with.
pub fn worker_keys_prefix(pool: &PoolName) -> String {
    format!("{pool}.")
}

/// KV key of one gateway in the gateways bucket ([`crate::topology::GATEWAYS_KV`]): its
/// instance id, which names it in logs and in the reply subjects it listens on.
pub fn gateway_key(gateway: &InstanceId) -> String {
    gateway.to_string()
}

/// KV key of one catalogue in the catalogue bucket. Catalogues are content-addressed, so two
/// replicas publishing the same catalogue write the same key.
pub fn catalog_key(pool: &PoolName, digest: &str) -> String {
    format!("{pool}.{digest}")
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subject_round_trips() {
        let gw = InstanceId::new("gw1").unwrap();
        let pool = PoolName::new("demo").unwrap();
        let s = call_reply(&pool, &gw, "abc123");
        assert_eq!(parse_reply(&s), Some(("demo", "abc123")));
        assert_eq!(parse_reply("mcpbus.v2.reply.demo.gw1"), None);
        assert_eq!(parse_reply("mcpbus.v2.reply.demo.gw1.a.b"), None);
        assert_eq!(parse_reply("other.v2.reply.demo.gw1.x"), None);
        assert_eq!(gateway_replies(&gw), "mcpbus.v2.reply.*.gw1.>");
    }

    #[test]
    fn call_subject_is_inside_the_stream_wildcard() {
        let s = call(&PoolName::new("demo").unwrap());
        assert!(s.starts_with(CALLS_WILDCARD.trim_end_matches('>')));
    }

    #[test]
    fn a_pools_cancellations_are_told_from_anything_else() {
        let demo = PoolName::new("demo").unwrap();
        let other = PoolName::new("demo2").unwrap();
        assert!(is_pool_cancel(&demo, &cancel(&demo, "c1")));
        assert!(is_pool_cancel(
            &demo,
            &cancel_request(&demo, "s", &serde_json::json!(1))
        ));
        // A pool whose name extends another's, the bare prefix, other kinds of subject.
        assert!(!is_pool_cancel(&demo, &cancel(&other, "c1")));
        assert!(!is_pool_cancel(&demo, "mcpbus.v2.cancel.demo."));
        assert!(!is_pool_cancel(&demo, "mcpbus.v2.cancel.demo"));
        assert!(!is_pool_cancel(&demo, &client_answer(&demo, "c1", 0)));
        assert!(!is_pool_cancel(&demo, "other.cancel.demo.c1"));
    }

    #[test]
    fn worker_facing_subjects_name_the_pool_and_hide_the_session() {
        let pool = PoolName::new("demo").unwrap();
        let session = "5f0c2a0e9d3b4c1e8a7f6b5d4c3b2a19";
        for s in [
            session_events(&pool, session, "call1"),
            cancel_request(&pool, session, &serde_json::json!(7)),
        ] {
            assert!(!s.contains(session), "{s}");
            assert_eq!(s.split('.').nth(3), Some("demo"), "{s}");
        }
        let token = scope_token(session);
        assert_eq!(token.len(), 32);
        assert_eq!(token, scope_token(session), "stable across calls");
        assert_ne!(token, scope_token("another"));
        assert_eq!(
            session_events_any_pool(session, "call1").replace('*', "demo"),
            session_events(&pool, session, "call1")
        );
        assert_eq!(
            cancel(&pool, "c1").split('.').nth(3),
            Some("demo"),
            "cancel names the pool"
        );
        assert_eq!(client_answer(&pool, "c1", 2), "mcpbus.v2.answer.demo.c1.2");
        let w1 = InstanceId::new("w1").unwrap();
        assert_eq!(drain(&pool, &w1), "mcpbus.v2.drain.demo.w1");
        assert!(pool_drains(&pool).starts_with(DRAIN_WILDCARD.trim_end_matches('>')));
    }

    #[test]
    fn liveness_probe_replies_round_trip() {
        let (gw, pool, w1) = (
            InstanceId::new("gw-1").unwrap(),
            PoolName::new("demo").unwrap(),
            InstanceId::new("w1").unwrap(),
        );
        assert_eq!(alive(&pool, &w1), "mcpbus.v2.alive.demo.w1");
        assert!(pool_alive(&pool).starts_with(ALIVE_WILDCARD.trim_end_matches('>')));
        let reply = alive_probe_reply(&gw, "p", 42, &pool, &w1);
        assert!(reply.starts_with(alive_probe_replies(&gw).trim_end_matches('>')));
        assert_eq!(
            parse_alive_probe_reply(&reply),
            Some(("p", 42, "demo", "w1"))
        );
        assert_eq!(
            parse_alive_probe_reply("_INBOX.gw.gw-1.alive.p.x.demo.w1"),
            None
        );
        assert_eq!(
            parse_alive_probe_reply("_INBOX.gw.gw-1.alive.p.1.demo.w1.x"),
            None
        );
        assert_eq!(
            parse_alive_probe_reply("_INBOX.gw.gw-1.other.p.1.demo.w1"),
            None
        );
    }

    #[test]
    fn kit_watch_subjects_cover_what_workers_send() {
        let key = session_events_live_key("s1", "call1");
        let copy = session_events_live("s1", "call1").replace('*', "demo");
        assert_eq!(live_event_key(&copy), Some(key.as_str()));
        let stored = session_events(&PoolName::new("demo").unwrap(), "s1", "call1");
        assert_eq!(live_event_key(&stored), None, "only live copies");
        assert_eq!(live_event_key("mcpbus.v2.live.demo"), None);
        let live = session_events_live_all("s1");
        let one = session_events_live("s1", "call1").replace('*', "demo");
        assert!(one.starts_with(live.trim_end_matches('>').replace('*', "demo").as_str()));
    }
}
