//! Streams, consumers and KV buckets: their names, retention and limits, and the idempotent
//! calls that declare them. Gateways and workers both call the `ensure_*` functions at start,
//! so whichever comes first creates the topology and the rest find it.
//!
//! Everything here works on nats-server 2.9.10, the oldest server we support (see the
//! shared TESTING.md): no per-message TTL, no multi-filter consumers, no stream metadata.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};

use crate::limits::{self, StoreLimits};
use crate::names::PoolName;
use crate::subjects;

/// The work queue of calls. One message per call, removed when a worker acknowledges it.
pub const CALLS_STREAM: &str = "MCPBUS_CALLS";

/// How long a publish id is remembered for de-duplication. Short on purpose: the server keeps
/// these ids in memory, and a gateway only retries a publish within seconds.
pub const CALLS_DEDUP_WINDOW: Duration = Duration::from_secs(120);

/// A call nobody took within a day is garbage: its caller stopped waiting long ago.
pub const CALLS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Bound on queued calls. With `DiscardPolicy::New` a full queue refuses new calls, which the
/// gateway reports to the client, instead of silently dropping old ones.
pub const CALLS_MAX_MESSAGES: i64 = 1_000_000;

/// The calls stream definition.
pub fn calls_stream(replicas: usize) -> stream::Config {
    stream::Config {
        name: CALLS_STREAM.to_owned(),
        description: Some("mcpbus: calls waiting for a worker".to_owned()),
        subjects: vec![subjects::CALLS_WILDCARD.to_owned()],
        retention: stream::RetentionPolicy::WorkQueue,
        discard: stream::DiscardPolicy::New,
        max_messages: CALLS_MAX_MESSAGES,
        max_age: CALLS_MAX_AGE,
        duplicate_window: CALLS_DEDUP_WINDOW,
        max_bytes: limits::CALLS_LIMITS.max_bytes,
        max_message_size: limits::CALLS_LIMITS.max_msg_size,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Server→client events of session-lane streams (progress, logs, results), replayable.
pub const EVENTS_STREAM: &str = "MCPBUS_EVENTS";

/// Default age limit of stored session events: how long a client can be away and still
/// resume a stream. Deployments may choose another when the stream is first created.
pub const EVENTS_DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

/// Bound on the events of one stream: no request produces more, and a runaway worker cannot
/// fill the store through one call.
pub const EVENTS_MAX_PER_STREAM: i64 = 10_000;

/// The session events stream. Stored events are republished with their sequence to the
/// live subjects, where the gateway holding the stream picks them up.
pub fn events_stream(replicas: usize, max_age: Duration) -> stream::Config {
    stream::Config {
        name: EVENTS_STREAM.to_owned(),
        description: Some("mcpbus: session events (progress, logs, results)".to_owned()),
        subjects: vec![subjects::EVENTS_WILDCARD.to_owned()],
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age,
        max_messages_per_subject: EVENTS_MAX_PER_STREAM,
        max_bytes: limits::EVENTS_LIMITS.max_bytes,
        max_message_size: limits::EVENTS_LIMITS.max_msg_size,
        // The server refuses a de-duplication window longer than the age limit.
        duplicate_window: CALLS_DEDUP_WINDOW.min(max_age),
        allow_direct: true,
        republish: Some(stream::Republish {
            source: subjects::EVENTS_WILDCARD.to_owned(),
            destination: subjects::EVENTS_LIVE_WILDCARD.to_owned(),
            headers_only: false,
        }),
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Cluster-wide events (`list_changed`, `resources/updated`), stored once for everyone.
pub const BROADCAST_STREAM: &str = "MCPBUS_BROADCAST";

/// Every gateway publishes the same catalogue change under the same id; this window must
/// cover the spread between gateways noticing it (KV watch delivery, expiry sweeps).
pub const BROADCAST_DEDUP_WINDOW: Duration = Duration::from_secs(30);

/// Default age limit of broadcast events: how long a standalone stream can be away and still
/// replay the changes it missed. Deployments may choose another when the stream is created.
pub const BROADCAST_DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

pub const BROADCAST_MAX_MESSAGES: i64 = 10_000;

pub fn broadcast_stream(replicas: usize, max_age: Duration) -> stream::Config {
    stream::Config {
        name: BROADCAST_STREAM.to_owned(),
        description: Some("mcpbus: cluster-wide notifications".to_owned()),
        subjects: vec![subjects::BROADCAST_WILDCARD.to_owned()],
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age,
        max_messages: BROADCAST_MAX_MESSAGES,
        max_bytes: limits::BROADCAST_LIMITS.max_bytes,
        max_message_size: limits::BROADCAST_LIMITS.max_msg_size,
        // The server refuses a de-duplication window longer than the age limit.
        duplicate_window: BROADCAST_DEDUP_WINDOW.min(max_age),
        allow_direct: true,
        republish: Some(stream::Republish {
            source: subjects::BROADCAST_WILDCARD.to_owned(),
            destination: subjects::BROADCAST_LIVE_WILDCARD.to_owned(),
            headers_only: false,
        }),
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Creates a stream if it is missing, and opens it.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<stream::Stream, TopologyError> {
    let name = config.name.clone();
    js.get_or_create_stream(config)
        .await
        .map_err(|e| TopologyError::Stream {
            name,
            source: e.into(),
        })
}

/// Durable consumer name shared by all replicas of a pool. KEDA scalers and dashboards use
/// this name, so it is part of the contract.
pub fn pool_consumer_name(pool: &PoolName) -> String {
    format!("mcpbus-pool-{pool}")
}

/// How long a worker may hold a call without acknowledging it or sending progress before
/// JetStream hands it to another replica. Workers extend it with `+WPI` while they run.
pub const POOL_ACK_WAIT: Duration = Duration::from_secs(30);

/// How many times a call may be delivered. The second delivery only happens after a worker
/// died holding it; the SDK decides from the tool's idempotency whether to run it again.
pub const POOL_MAX_DELIVER: i64 = 5;

/// Every acknowledgement (`+ACK`, `-NAK`, `+TERM`, `+WPI`) of the calls of `pool`:
/// JetStream's ack subjects of the pool's consumer, which the pool's workers publish to
/// (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…`). The worker kit watches them
/// to see how a worker settled each call (ADR 0018).
pub fn pool_acks(pool: &PoolName) -> String {
    format!("$JS.ACK.{CALLS_STREAM}.{}.>", pool_consumer_name(pool))
}

/// The pull consumer a pool's replicas share.
pub fn pool_consumer(pool: &PoolName, max_ack_pending: i64) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(pool_consumer_name(pool)),
        description: Some(format!("mcpbus: calls for pool {pool}")),
        filter_subject: subjects::call(pool),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: POOL_ACK_WAIT,
        max_deliver: POOL_MAX_DELIVER,
        max_ack_pending,
        ..Default::default()
    }
}

/// A KV bucket definition.
#[derive(Debug, Clone, Copy)]
pub struct KvSpec {
    pub bucket: &'static str,
    pub description: &'static str,
    pub history: i64,
    /// Entries older than this are removed by the server. Not a liveness signal: 2.9 sends
    /// watchers nothing when an entry ages out, so readers check ages themselves.
    pub max_age: Duration,
    /// Bytes the bucket may hold and its largest value (ADR 0007). Buckets discard new
    /// writes when full: a full bucket refuses, it never drops a live entry.
    pub limits: StoreLimits,
}

impl KvSpec {
    /// This bucket with other size limits (a gateway's `--store-*` flags).
    pub const fn with_limits(self, limits: StoreLimits) -> Self {
        Self { limits, ..self }
    }
}

/// Worker liveness records, `<pool>.<instance>` → [`crate::messages::WorkerRecord`].
/// Workers re-put every heartbeat; the age limit only sweeps up after crashed workers.
pub const WORKERS_KV: KvSpec = KvSpec {
    bucket: "mcpbus-workers",
    description: "mcpbus: live worker instances",
    history: 1,
    max_age: Duration::from_secs(300),
    limits: limits::WORKERS_LIMITS,
};

/// Pool catalogues, `<pool>.<digest>` → [`crate::messages::CatalogRecord`]. Workers re-put
/// theirs every [`CATALOG_REFRESH`], well inside the age limit.
pub const CATALOG_KV: KvSpec = KvSpec {
    bucket: "mcpbus-catalog",
    description: "mcpbus: what each worker pool serves",
    history: 1,
    max_age: Duration::from_secs(24 * 3600),
    limits: limits::CATALOG_LIMITS,
};

/// How often a worker re-puts its catalogue so that it never ages out while the worker lives.
pub const CATALOG_REFRESH: Duration = Duration::from_secs(3600);

/// MCP sessions of the session lane, `<session id>` → the gateway's session record. The
/// age limit is the idle timeout: gateways re-put a session's record as it is used.
pub const SESSIONS_KV: KvSpec = KvSpec {
    bucket: "mcpbus-sessions",
    description: "mcpbus: MCP sessions (2025 revisions)",
    history: 1,
    max_age: Duration::from_secs(24 * 3600),
    limits: limits::SESSIONS_LIMITS,
};

/// Tasks (2026-07-28 tasks extension), `<task id>` → the gateway's task record. Any gateway
/// answers `tasks/get`, `tasks/update` and `tasks/cancel` from it. The age limit bounds a
/// task's `ttlMs`.
pub const TASKS_KV: KvSpec = KvSpec {
    bucket: "mcpbus-tasks",
    description: "mcpbus: tasks (2026-07-28 tasks extension)",
    history: 1,
    max_age: Duration::from_secs(24 * 3600),
    limits: limits::TASKS_LIMITS,
};

/// Cluster-wide settings the gateways agree on, e.g. [`REQUEST_STATE_KEY`]. Never aged out.
pub const CLUSTER_KV: KvSpec = KvSpec {
    bucket: "mcpbus-cluster",
    description: "mcpbus: cluster-wide settings and generated keys",
    history: 1,
    max_age: Duration::ZERO,
    limits: limits::CLUSTER_LIMITS,
};

/// How often a gateway re-puts its record in [`GATEWAYS_KV`].
pub const GATEWAY_HEARTBEAT: Duration = Duration::from_secs(5);

/// Live gateway nodes, `<gateway instance>` → [`crate::messages::GatewayRecord`], for
/// operators (`mcpbusctl status`; ADR 0021). Each gateway re-puts its record every
/// [`GATEWAY_HEARTBEAT`] and deletes it on a graceful stop; the age limit, a few beats,
/// removes the record of a gateway that died. Nothing routes by it.
pub const GATEWAYS_KV: KvSpec = KvSpec {
    bucket: "mcpbus-gateways",
    description: "mcpbus: live gateway nodes",
    history: 1,
    max_age: Duration::from_secs(20),
    limits: limits::GATEWAYS_LIMITS,
};

/// Every KV bucket mcpbus declares (gateways create them all).
pub const ALL_KV: [KvSpec; 6] = [
    WORKERS_KV,
    CATALOG_KV,
    SESSIONS_KV,
    TASKS_KV,
    CLUSTER_KV,
    GATEWAYS_KV,
];

/// The name of every stream mcpbus declares: its three streams, then each bucket's.
pub fn stream_names() -> Vec<String> {
    let mut names = vec![
        CALLS_STREAM.to_owned(),
        EVENTS_STREAM.to_owned(),
        BROADCAST_STREAM.to_owned(),
    ];
    names.extend(ALL_KV.map(kv_stream_name));
    names
}

/// Key in [`CLUSTER_KV`] holding the generated secret that seals MRTR `requestState`, when
/// the operator configured none. The first gateway creates it; the others read it.
pub const REQUEST_STATE_KEY: &str = "request-state-key";

/// A failure to declare or look up topology.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    #[error("cannot create or open stream {name}: {source}")]
    Stream {
        name: String,
        #[source]
        source: async_nats::Error,
    },
    #[error("cannot create or open consumer {name}: {source}")]
    Consumer {
        name: String,
        #[source]
        source: async_nats::Error,
    },
}

/// Creates the calls stream if it is missing, and opens it.
pub async fn ensure_calls_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<stream::Stream, TopologyError> {
    ensure_stream(js, calls_stream(replicas)).await
}

/// Opens the calls stream and creates the pool's shared consumer if it is missing. A worker
/// never creates a stream (its permissions do not allow it, ADR 0013): it waits for a
/// gateway to declare the stream.
pub async fn ensure_pool_consumer(
    js: &jetstream::Context,
    pool: &PoolName,
    max_ack_pending: i64,
) -> Result<consumer::Consumer<consumer::pull::Config>, TopologyError> {
    let stream = open_stream_waiting(js, CALLS_STREAM).await?;
    let name = pool_consumer_name(pool);
    stream
        .get_or_create_consumer(&name, pool_consumer(pool, max_ack_pending))
        .await
        .map_err(|e| TopologyError::Consumer {
            name,
            source: e.into(),
        })
}

/// The stream that is KV bucket `spec`: `KV_<bucket>` on `$KV.<bucket>.>`, declared the way
/// the NATS clients declare a bucket. Public because workers in other languages declare the
/// same stream (PROTOCOL.md section 3), and `tests/python_mirror.rs` holds the Python SDK's
/// copy of these settings to it.
pub fn kv_stream(spec: KvSpec, replicas: usize) -> stream::Config {
    stream::Config {
        name: kv_stream_name(spec),
        description: Some(spec.description.to_owned()),
        subjects: vec![format!("$KV.{}.>", spec.bucket)],
        max_messages_per_subject: spec.history,
        max_age: spec.max_age,
        max_bytes: spec.limits.max_bytes,
        max_message_size: spec.limits.max_msg_size,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Creates a KV bucket if it is missing, and opens it.
///
/// We declare the bucket's backing stream ourselves instead of calling `create_key_value`:
/// on nats-server 2.9 that call fails parsing the account info (no `reserved_memory`).
/// [`kv_stream`] is exactly what a KV bucket is.
pub async fn ensure_kv(
    js: &jetstream::Context,
    spec: KvSpec,
    replicas: usize,
) -> Result<kv::Store, TopologyError> {
    let config = kv_stream(spec, replicas);
    let name = config.name.clone();
    let err = |e: async_nats::Error| TopologyError::Stream {
        name: name.clone(),
        source: e,
    };
    js.get_or_create_stream(config)
        .await
        .map_err(|e| err(e.into()))?;
    js.get_key_value(spec.bucket)
        .await
        .map_err(|e| err(e.into()))
}

/// The stream behind KV bucket `spec`.
pub fn kv_stream_name(spec: KvSpec) -> String {
    format!("KV_{}", spec.bucket)
}

/// The subjects of every worker record of `pool` in [`WORKERS_KV`]: what a worker may read
/// (the last of them, by direct get) to learn since when its pool serves (ADR 0015).
pub fn pool_worker_records(pool: &PoolName) -> String {
    format!(
        "$KV.{}.{}*",
        WORKERS_KV.bucket,
        subjects::worker_keys_prefix(pool)
    )
}

/// Opens KV bucket `spec`, waiting for a gateway to declare it (see [`open_stream_waiting`]).
pub async fn open_kv_waiting(
    js: &jetstream::Context,
    spec: KvSpec,
) -> Result<kv::Store, TopologyError> {
    open_stream_waiting(js, &kv_stream_name(spec)).await?;
    js.get_key_value(spec.bucket)
        .await
        .map_err(|e| TopologyError::Stream {
            name: kv_stream_name(spec),
            source: e.into(),
        })
}

/// How often a worker looks again for topology no gateway has declared yet.
const TOPOLOGY_POLL: Duration = Duration::from_secs(1);

/// Opens stream `name`, waiting while it does not exist: gateways declare the topology
/// with its limits, and a worker that starts first waits for them rather than creating
/// streams itself. Any other failure (the bus refusing, a permission missing) is returned.
pub async fn open_stream_waiting(
    js: &jetstream::Context,
    name: &str,
) -> Result<stream::Stream, TopologyError> {
    let mut told = false;
    loop {
        match js.get_stream(name).await {
            Ok(stream) => return Ok(stream),
            // JetStream itself not answering yet (a server starting, or reloading its
            // configuration as it does when an operator adds a pool's user) is also waited out.
            Err(e) if stream_missing(&e.kind()) || no_responders(&e) => {
                if !told {
                    tracing::info!(stream = name, "waiting for a gateway to declare the stream");
                    told = true;
                }
                tokio::time::sleep(TOPOLOGY_POLL).await;
            }
            Err(e) => {
                return Err(TopologyError::Stream {
                    name: name.to_owned(),
                    source: e.into(),
                })
            }
        }
    }
}

fn no_responders(e: &jetstream::context::GetStreamError) -> bool {
    use jetstream::context::{RequestError, RequestErrorKind};
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<RequestError>())
        .is_some_and(|r| r.kind() == RequestErrorKind::NoResponders)
}

fn stream_missing(kind: &jetstream::context::GetStreamErrorKind) -> bool {
    use jetstream::context::GetStreamErrorKind;
    matches!(kind, GetStreamErrorKind::JetStream(e)
        if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// What declaring a stream with limits did to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitsApplied {
    /// The stream was created, or already had these limits.
    AsDeclared,
    /// An existing stream had other limits and now has these.
    Updated { was: StoreLimits },
    /// An existing stream holds more than the new byte limit. Lowering it would make the
    /// server drop stored messages (queued calls, live sessions), so the stream keeps its
    /// old byte limit (and gets the new message size limit); the operator is warned.
    KeptMaxBytes { stored: u64, was: StoreLimits },
}

/// Creates stream `config` if it is missing; if it exists, brings its two size limits to
/// those of `config` and leaves every other setting as found (ADR 0007). Gateways call this
/// at start, so the last gateway started with other limits sets them.
pub async fn ensure_limits(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<LimitsApplied, TopologyError> {
    let name = config.name.clone();
    let err = |e: async_nats::Error| TopologyError::Stream {
        name: name.clone(),
        source: e,
    };
    let want = StoreLimits::of(&config);
    let mut stream = js
        .get_or_create_stream(config)
        .await
        .map_err(|e| err(e.into()))?;
    let info = stream.info().await.map_err(|e| err(e.into()))?;
    let was = StoreLimits::of(&info.config);
    if was == want {
        return Ok(LimitsApplied::AsDeclared);
    }
    let stored = info.state.bytes;
    let keep_bytes = want.max_bytes >= 0
        && stored > want.max_bytes as u64
        && (was.max_bytes < 0 || was.max_bytes > want.max_bytes);
    let mut updated = info.config.clone();
    StoreLimits::apply(want, &mut updated);
    if keep_bytes {
        updated.max_bytes = was.max_bytes;
    }
    if StoreLimits::of(&updated) != was {
        js.update_stream(&updated)
            .await
            .map_err(|e| err(e.into()))?;
    }
    Ok(if keep_bytes {
        LimitsApplied::KeptMaxBytes { stored, was }
    } else {
        LimitsApplied::Updated { was }
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn pool_acks_name_the_consumer() {
        let pool = PoolName::new("demo").unwrap();
        assert_eq!(pool_acks(&pool), "$JS.ACK.MCPBUS_CALLS.mcpbus-pool-demo.>");
    }
    use super::*;

    /// Every stream and bucket mcpbus declares, as declared.
    fn all() -> Vec<stream::Config> {
        let hour = Duration::from_secs(3600);
        let mut all = vec![
            calls_stream(1),
            events_stream(1, hour),
            broadcast_stream(1, hour),
        ];
        for spec in ALL_KV {
            all.push(kv_stream(spec, 1));
        }
        all
    }

    #[test]
    fn every_stream_and_bucket_is_bounded() {
        for c in all() {
            assert!(c.max_bytes > 0, "{} has no max_bytes", c.name);
            assert!(c.max_message_size > 0, "{} has no max_msg_size", c.name);
            assert!(
                i64::from(c.max_message_size) <= c.max_bytes,
                "{}: a message larger than the store",
                c.name
            );
            // NATS' default max_payload: a larger message never reaches the stream.
            assert!(c.max_message_size <= 1024 * 1024, "{}", c.name);
        }
    }

    #[test]
    fn stores_a_client_can_fill_refuse_rather_than_evict() {
        // A full queue or bucket refuses new writes: dropping the oldest would lose queued
        // calls or live sessions. Event logs evict the oldest (ADR 0007).
        for c in all() {
            let expect = if c.name == EVENTS_STREAM || c.name == BROADCAST_STREAM {
                stream::DiscardPolicy::Old
            } else {
                stream::DiscardPolicy::New
            };
            assert_eq!(c.discard, expect, "{}", c.name);
        }
    }

    #[test]
    fn every_declared_stream_is_named() {
        let declared: Vec<String> = all().into_iter().map(|c| c.name).collect();
        assert_eq!(stream_names(), declared);
    }

    #[test]
    fn a_dead_gateway_ages_out_after_a_few_missed_beats() {
        assert!(GATEWAYS_KV.max_age >= 3 * GATEWAY_HEARTBEAT);
        assert!(GATEWAYS_KV.max_age <= 5 * GATEWAY_HEARTBEAT);
    }

    #[test]
    fn configured_limits_reach_the_bucket() {
        let small = limits::StoreLimits::new(4096, 512);
        let c = kv_stream(SESSIONS_KV.with_limits(small), 1);
        assert_eq!((c.max_bytes, c.max_message_size), (4096, 512));
        assert_eq!(c.name, "KV_mcpbus-sessions");
        let d = kv_stream(SESSIONS_KV, 1);
        assert_eq!(d.max_bytes, limits::SESSIONS_LIMITS.max_bytes);
    }
}
