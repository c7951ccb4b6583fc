//! The NATS permissions of each role, derived from the subjects and topology of this crate so
//! that they never drift from what the code uses (ADR 0013). `mcpbusctl nats-permissions`
//! prints them; the test harness runs its nats-server with them.
//!
//! Everything is an allow-list: what is not listed is refused by the server.

use std::fmt::Write as _;

use crate::messages::BroadcastKind;
use crate::names::PoolName;
use crate::subjects;
use crate::topology::{
    self, kv_stream_name, KvSpec, BROADCAST_STREAM, CALLS_STREAM, CATALOG_KV, CLUSTER_KV,
    EVENTS_STREAM, GATEWAYS_KV, SESSIONS_KV, TASKS_KV, WORKERS_KV,
};

/// Which process a set of permissions is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A gateway: owns the topology and every client-facing record.
    Gateway,
    /// A worker of one pool: its own calls, nothing else.
    Worker(PoolName),
    /// The operator's tools (`mcpbusctl`, ADR 0021): read the registry, the gateways, the
    /// sessions and tasks (to count them), every store's usage and the pools' queues; drain a
    /// worker instance; end a session. Never the cluster bucket, never a call or a reply.
    Operator,
}

/// What one role may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

impl Permissions {
    /// The permissions of `role`.
    pub fn of(role: &Role) -> Self {
        match role {
            Role::Gateway => gateway(),
            Role::Worker(pool) => worker(pool),
            Role::Operator => operator(),
        }
    }

    /// The `permissions` block of a nats-server user, in the server's configuration syntax.
    pub fn to_server_config(&self) -> String {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|s| format!("      \"{s}\""))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut out = String::from("permissions: {\n");
        let _ = writeln!(
            out,
            "  publish: {{\n    allow: [\n{}\n    ]\n  }}",
            list(&self.publish)
        );
        let _ = writeln!(
            out,
            "  subscribe: {{\n    allow: [\n{}\n    ]\n  }}",
            list(&self.subscribe)
        );
        out.push('}');
        out
    }
}

/// Reading KV bucket `spec`: opening it, one entry by direct get, and the ordered consumers
/// behind listing and watching it.
fn kv_read(spec: KvSpec) -> Vec<String> {
    let stream = kv_stream_name(spec);
    vec![
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.DELETE.{stream}.>"),
        format!("$JS.API.CONSUMER.INFO.{stream}.>"),
    ]
}

fn gateway() -> Permissions {
    let streams = topology::stream_names();
    let mut publish = vec![
        // What a gateway sends on the bus: calls, stream records, broadcasts, cancels,
        // client answers and session signals.
        subjects::CALLS_WILDCARD.to_owned(),
        subjects::EVENTS_WILDCARD.to_owned(),
        subjects::BROADCAST_WILDCARD.to_owned(),
        subjects::CANCEL_WILDCARD.to_owned(),
        subjects::ANSWER_WILDCARD.to_owned(),
        subjects::SESSION_SIGNALS_WILDCARD.to_owned(),
        // Answers to workers' announcement requests, in the asking pool's inbox only (the
        // gateway checks the reply subject against the pool; ADR 0023).
        format!("{}.>", subjects::WORKER_INBOXES),
        "$JS.API.INFO".to_owned(),
        // Probing workers' liveness subscriptions (ADR 0029): the server's "no responders"
        // comes back into the gateway's own inbox.
        subjects::ALIVE_WILDCARD.to_owned(),
        // Flow control of the ordered consumers behind KV watches.
        "$JS.FC.>".to_owned(),
    ];
    for stream in &streams {
        for api in [
            "STREAM.CREATE",
            "STREAM.UPDATE",
            "STREAM.INFO",
            "STREAM.MSG.GET",
        ] {
            publish.push(format!("$JS.API.{api}.{stream}"));
        }
        publish.push(format!("$JS.API.DIRECT.GET.{stream}"));
        publish.push(format!("$JS.API.DIRECT.GET.{stream}.>"));
    }
    // Taking back a call whose client left before it ran; purging an ended session.
    publish.push(format!("$JS.API.STREAM.MSG.DELETE.{CALLS_STREAM}"));
    publish.push(format!("$JS.API.STREAM.PURGE.{EVENTS_STREAM}"));
    // Watches on the buckets (ordered consumers), never a consumer on the calls queue.
    for spec in topology::ALL_KV {
        let stream = kv_stream_name(spec);
        publish.push(format!("$JS.API.CONSUMER.CREATE.{stream}"));
        publish.push(format!("$JS.API.CONSUMER.CREATE.{stream}.>"));
        publish.push(format!("$JS.API.CONSUMER.DELETE.{stream}.>"));
        publish.push(format!("$JS.API.CONSUMER.INFO.{stream}.>"));
    }
    publish.push(format!("$JS.API.CONSUMER.INFO.{CALLS_STREAM}.>"));
    // Replaying a long backlog in bulk (ADR 0024): a short-lived pull consumer on the events
    // or broadcast stream, filtered on the gateway's own subjects (the server checks the
    // filter named in the subject against the configuration), fetched into the gateway's
    // inbox, then deleted. A consumer's deliver subject is not checked, but a gateway may
    // already read and publish everything these streams hold.
    for (stream, filter) in [
        (EVENTS_STREAM, subjects::EVENTS_WILDCARD),
        (BROADCAST_STREAM, subjects::BROADCAST_WILDCARD),
    ] {
        publish.push(format!("$JS.API.CONSUMER.CREATE.{stream}.*.{filter}"));
        publish.push(format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.*"));
        publish.push(format!("$JS.API.CONSUMER.DELETE.{stream}.*"));
    }
    // The gateways' own records; the worker and catalogue buckets are only read.
    for spec in [SESSIONS_KV, TASKS_KV, CLUSTER_KV, GATEWAYS_KV] {
        publish.push(format!("$KV.{}.>", spec.bucket));
    }
    Permissions {
        publish,
        subscribe: vec![
            format!("{}.>", subjects::GATEWAY_INBOX_PREFIX),
            subjects::REPLY_WILDCARD.to_owned(),
            subjects::EVENTS_LIVE_WILDCARD.to_owned(),
            subjects::BROADCAST_LIVE_WILDCARD.to_owned(),
            subjects::SESSION_SIGNALS_WILDCARD.to_owned(),
            subjects::CANCEL_WILDCARD.to_owned(),
            subjects::ANNOUNCE_WILDCARD.to_owned(),
        ],
    }
}

fn worker(pool: &PoolName) -> Permissions {
    let consumer = topology::pool_consumer_name(pool);
    let service = subjects::service_name(pool);
    Permissions {
        publish: vec![
            // Opening the calls stream and its buckets; never creating one (gateways do).
            format!("$JS.API.STREAM.INFO.{CALLS_STREAM}"),
            format!("$JS.API.STREAM.INFO.{}", kv_stream_name(WORKERS_KV)),
            format!("$JS.API.STREAM.INFO.{}", kv_stream_name(CATALOG_KV)),
            // Its pool's consumer, created only with its own filter: the server checks the
            // filter in the subject against the configuration.
            format!("$JS.API.CONSUMER.INFO.{CALLS_STREAM}.{consumer}"),
            format!(
                "$JS.API.CONSUMER.CREATE.{CALLS_STREAM}.{consumer}.{}",
                subjects::call(pool)
            ),
            format!("$JS.API.CONSUMER.MSG.NEXT.{CALLS_STREAM}.{consumer}"),
            topology::pool_acks(pool),
            // Registering under its own pool only.
            format!("$KV.{}.{pool}.*", WORKERS_KV.bucket),
            format!("$KV.{}.{pool}.*", CATALOG_KV.bucket),
            // Reading the last of its own pool's liveness records, so that a new replica
            // keeps the pool's registration time (ADR 0015). By direct get only: a worker may
            // create no consumer on that bucket, since a consumer's deliver subject is not
            // checked against its creator's permissions, and the values are the workers' own.
            format!(
                "$JS.API.DIRECT.GET.{}.{}",
                kv_stream_name(WORKERS_KV),
                topology::pool_worker_records(pool)
            ),
            // Answering calls of its pool: replies, and stored replies of session streams.
            subjects::pool_replies(pool),
            subjects::pool_events(pool),
            // Asking for a server-wide message, under its own pool's name (ADR 0023).
            subjects::announce(pool),
            // Answers to NATS service-API pings, under the one prefix operators' tools use
            // for them. Not `allow_responses`: on nats-server 2.9 it made every worker
            // publish several times slower (docs/PERFORMANCE.md), and a worker may answer
            // nothing else.
            format!("{}.>", subjects::SERVICE_REPLY_PREFIX),
        ],
        subscribe: vec![
            format!("{}.>", subjects::worker_inbox_prefix(pool)),
            subjects::pool_cancels(pool),
            subjects::pool_answers(pool),
            // The operator asking one instance to drain (PROTOCOL.md §4.3).
            subjects::pool_drains(pool),
            // Its liveness subscription, probed by gateways (ADR 0029).
            subjects::pool_alive(pool),
            // The NATS service API: discovery pings for everyone, and its own name.
            "$SRV.*".to_owned(),
            format!("$SRV.*.{service}"),
            format!("$SRV.*.{service}.*"),
        ],
    }
}

fn operator() -> Permissions {
    let mut publish = vec![
        "$JS.API.INFO".to_owned(),
        // Flow control of the ordered consumers behind listing a bucket.
        "$JS.FC.>".to_owned(),
        // `drain POOL/INSTANCE`: the instance's drain subject.
        subjects::DRAIN_WILDCARD.to_owned(),
        // `purge-session ID`, as a client's DELETE: the record (purged from the bucket's
        // stream: the operator writes no bucket, since a consumer it creates could relay
        // what it wrote anywhere, into a pool's queue too), a signal that ends the session's
        // streams on every gateway, the purge of its stored events.
        format!("$JS.API.STREAM.PURGE.{}", kv_stream_name(SESSIONS_KV)),
        subjects::SESSION_SIGNALS_WILDCARD.to_owned(),
        format!("$JS.API.STREAM.PURGE.{EVENTS_STREAM}"),
        // `announce LEVEL TEXT`: server-wide messages, and no other broadcast kind (ADR
        // 0023). It can create no consumer on the broadcast stream, so nothing it stores
        // there can be relayed elsewhere.
        subjects::broadcast(BroadcastKind::MESSAGE_TOKEN),
        // Queue lag: the pools' consumers on the calls stream, read only.
        format!("$JS.API.CONSUMER.LIST.{CALLS_STREAM}"),
        format!("$JS.API.CONSUMER.INFO.{CALLS_STREAM}.>"),
    ];
    // Storage use: every stream's and bucket's info (sizes, limits), never its messages.
    for stream in topology::stream_names() {
        publish.push(format!("$JS.API.STREAM.INFO.{stream}"));
    }
    // Reading the registry, the gateways, and the sessions and tasks to count them. Not the
    // cluster bucket: the generated requestState key is the gateways' alone (ADR 0013).
    for spec in [WORKERS_KV, CATALOG_KV, GATEWAYS_KV, SESSIONS_KV, TASKS_KV] {
        for subject in kv_read(spec) {
            if !publish.contains(&subject) {
                publish.push(subject);
            }
        }
    }
    Permissions {
        publish,
        subscribe: vec![format!("{}.>", subjects::ADMIN_INBOX_PREFIX)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether NATS subject pattern `pattern` matches the concrete subject `subject`.
    fn matches(pattern: &str, subject: &str) -> bool {
        let mut p = pattern.split('.');
        let mut s = subject.split('.');
        loop {
            match (p.next(), s.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    fn allowed(list: &[String], subject: &str) -> bool {
        list.iter().any(|p| matches(p, subject))
    }

    #[test]
    fn a_worker_reaches_only_its_own_pool() {
        let demo = PoolName::new("demo").unwrap();
        let other = PoolName::new("other").unwrap();
        let gw = crate::names::InstanceId::new("gw-1").unwrap();
        let w = Permissions::of(&Role::Worker(demo.clone()));
        // Its own calls.
        assert!(allowed(&w.publish, &subjects::call_reply(&demo, &gw, "c1")));
        assert!(allowed(
            &w.publish,
            &subjects::session_events(&demo, "s1", "c1")
        ));
        assert!(allowed(&w.subscribe, &subjects::cancel(&demo, "c1")));
        assert!(allowed(
            &w.subscribe,
            &subjects::client_answer(&demo, "c1", 0)
        ));
        assert!(allowed(
            &w.publish,
            &format!("$KV.mcpbus-workers.{}", subjects::worker_key(&demo, &gw))
        ));
        // Nothing of another pool's, and nothing of the gateways'.
        for subject in [
            subjects::call_reply(&other, &gw, "c1"),
            subjects::session_events(&other, "s1", "c1"),
            subjects::call(&demo),
            subjects::broadcast("tools"),
            subjects::session_signal("s1"),
            format!("$KV.mcpbus-workers.{}", subjects::worker_key(&other, &gw)),
            format!("$KV.mcpbus-catalog.{}", subjects::catalog_key(&other, "d")),
            "$KV.mcpbus-sessions.s1".to_owned(),
            "$JS.API.STREAM.CREATE.MCPBUS_CALLS".to_owned(),
            "$JS.API.CONSUMER.CREATE.MCPBUS_CALLS.mcpbus-pool-demo.mcpbus.v2.call.other".to_owned(),
            "$JS.API.CONSUMER.DURABLE.CREATE.MCPBUS_CALLS.mcpbus-pool-demo".to_owned(),
            "$JS.API.CONSUMER.MSG.NEXT.MCPBUS_CALLS.mcpbus-pool-other".to_owned(),
            "$JS.API.DIRECT.GET.KV_mcpbus-cluster.$KV.mcpbus-cluster.request-state-key".to_owned(),
            "$JS.API.STREAM.MSG.GET.KV_mcpbus-sessions".to_owned(),
            "$JS.API.CONSUMER.CREATE.KV_mcpbus-workers".to_owned(),
            "$JS.API.DIRECT.GET.KV_mcpbus-workers.$KV.mcpbus-workers.other.*".to_owned(),
        ] {
            assert!(!allowed(&w.publish, &subject), "may publish {subject}");
        }
        for subject in [
            subjects::cancel(&other, "c1"),
            subjects::client_answer(&other, "c1", 0),
            subjects::session_events_live("s1", "c1").replace('*', "demo"),
            subjects::call_reply(&demo, &gw, "c1"),
            subjects::BROADCAST_LIVE_WILDCARD.to_owned(),
            "_INBOX.gw.x".to_owned(),
            format!("{}.x", subjects::worker_inbox_prefix(&other)),
            "mcpbus.v2.call.demo".to_owned(),
        ] {
            assert!(!allowed(&w.subscribe, &subject), "may subscribe {subject}");
        }
    }

    #[test]
    fn a_gateway_cannot_take_calls_or_register_workers() {
        let g = Permissions::of(&Role::Gateway);
        let demo = PoolName::new("demo").unwrap();
        assert!(allowed(&g.publish, &subjects::call(&demo)));
        assert!(!allowed(
            &g.publish,
            "$JS.API.CONSUMER.MSG.NEXT.MCPBUS_CALLS.mcpbus-pool-demo"
        ));
        assert!(!allowed(&g.publish, "$KV.mcpbus-workers.demo.w1"));
        // It probes workers' alive subjects (ADR 0029), and hears the answers in its inbox.
        let w1 = crate::names::InstanceId::new("w1").unwrap();
        assert!(allowed(&g.publish, &subjects::alive(&demo, &w1)));
        let gw = crate::names::InstanceId::new("gw-1").unwrap();
        let reply = subjects::alive_probe_reply(&gw, "p", 1, &demo, &w1);
        assert!(allowed(&g.subscribe, &reply));
        assert!(!allowed(&g.subscribe, &subjects::call(&demo)));
        assert!(!allowed(&g.subscribe, "_INBOX.pool.demo.x"));
    }

    #[test]
    fn a_worker_hears_drains_of_its_own_pool_only() {
        let demo = PoolName::new("demo").unwrap();
        let other = PoolName::new("other").unwrap();
        let w1 = crate::names::InstanceId::new("w1").unwrap();
        let w = Permissions::of(&Role::Worker(demo.clone()));
        assert!(allowed(&w.subscribe, &subjects::drain(&demo, &w1)));
        assert!(!allowed(&w.subscribe, &subjects::drain(&other, &w1)));
        assert!(!allowed(&w.publish, &subjects::drain(&demo, &w1)));
        // Its own pool's alive subjects only, to hold, never to probe (ADR 0029).
        assert!(allowed(&w.subscribe, &subjects::alive(&demo, &w1)));
        assert!(!allowed(&w.subscribe, &subjects::alive(&other, &w1)));
        assert!(!allowed(&w.publish, &subjects::alive(&demo, &w1)));
    }

    #[test]
    fn the_operator_reads_and_drains_but_never_serves_or_reads_the_cluster_key() {
        let o = Permissions::of(&Role::Operator);
        let demo = PoolName::new("demo").unwrap();
        let w1 = crate::names::InstanceId::new("w1").unwrap();
        let gw = crate::names::InstanceId::new("gw-1").unwrap();
        for subject in [
            subjects::drain(&demo, &w1),
            subjects::session_signal("s1"),
            "$JS.API.STREAM.PURGE.KV_mcpbus-sessions".to_owned(),
            "$JS.API.STREAM.PURGE.MCPBUS_EVENTS".to_owned(),
            "$JS.API.STREAM.INFO.MCPBUS_CALLS".to_owned(),
            "$JS.API.STREAM.INFO.KV_mcpbus-cluster".to_owned(),
            "$JS.API.CONSUMER.LIST.MCPBUS_CALLS".to_owned(),
            "$JS.API.CONSUMER.INFO.MCPBUS_CALLS.mcpbus-pool-demo".to_owned(),
            "$JS.API.DIRECT.GET.KV_mcpbus-workers.$KV.mcpbus-workers.demo.w1".to_owned(),
            "$JS.API.CONSUMER.CREATE.KV_mcpbus-gateways".to_owned(),
            "$JS.API.CONSUMER.CREATE.KV_mcpbus-tasks".to_owned(),
        ] {
            assert!(allowed(&o.publish, &subject), "may not publish {subject}");
        }
        for subject in [
            subjects::call(&demo),
            subjects::call_reply(&demo, &gw, "c1"),
            subjects::session_events(&demo, "s1", "c1"),
            subjects::cancel(&demo, "c1"),
            subjects::client_answer(&demo, "c1", 1),
            subjects::broadcast("tools"),
            "$KV.mcpbus-workers.demo.w1".to_owned(),
            "$KV.mcpbus-gateways.gw-1".to_owned(),
            "$KV.mcpbus-sessions.s1".to_owned(),
            "$KV.mcpbus-tasks.t1".to_owned(),
            "$KV.mcpbus-cluster.request-state-key".to_owned(),
            "$JS.API.DIRECT.GET.KV_mcpbus-cluster.$KV.mcpbus-cluster.request-state-key".to_owned(),
            "$JS.API.STREAM.MSG.GET.KV_mcpbus-cluster".to_owned(),
            "$JS.API.CONSUMER.CREATE.KV_mcpbus-cluster".to_owned(),
            "$JS.API.CONSUMER.MSG.NEXT.MCPBUS_CALLS.mcpbus-pool-demo".to_owned(),
            "$JS.API.CONSUMER.CREATE.MCPBUS_CALLS.x".to_owned(),
            "$JS.API.STREAM.PURGE.MCPBUS_CALLS".to_owned(),
            "$JS.API.STREAM.DELETE.MCPBUS_EVENTS".to_owned(),
        ] {
            assert!(!allowed(&o.publish, &subject), "may publish {subject}");
        }
        for subject in [
            subjects::REPLY_WILDCARD,
            subjects::EVENTS_LIVE_WILDCARD,
            "_INBOX.gw.x",
            "mcpbus.v2.call.demo",
        ] {
            assert!(!allowed(&o.subscribe, subject), "may subscribe {subject}");
        }
        // It writes no bucket: what it wrote, a consumer it may create could deliver anywhere.
        for spec in topology::ALL_KV {
            let key = format!("$KV.{}.k", spec.bucket);
            assert!(!allowed(&o.publish, &key), "may write {key}");
        }
    }

    #[test]
    fn the_server_config_lists_every_subject_quoted() {
        let text =
            Permissions::of(&Role::Worker(PoolName::new("demo").unwrap())).to_server_config();
        assert!(text.starts_with("permissions: {"));
        assert!(text.contains("\"mcpbus.v2.reply.demo.>\""));
        assert!(text.ends_with('}'));
    }
}
