//! The JetStream store limits of a gateway (ADR 0007): the configured size limits put on
//! every stream and bucket before the gateway serves, and the one error a request gets when
//! a store refuses a write for them.
//!
//! This module may declare and update streams; it knows nothing of HTTP (`http/wire.rs`
//! maps [`StoreRefused`] to a status and a JSON-RPC code).

use async_nats::jetstream;
use bus_schema::failover::{self, Repeat};
use bus_schema::limits::{self, StoreLimits, StoreRefusal};

use bus_schema::topology::{
    self, LimitsApplied, CATALOG_KV, CLUSTER_KV, GATEWAYS_KV, SESSIONS_KV, TASKS_KV, WORKERS_KV,
};

use crate::error::GatewayError;
use crate::Config;

/// The size limits of the stores a client can fill; the others (broadcast, workers,
/// catalogue, cluster, gateways) keep bus-schema's defaults, which workers declare too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreLimitsConfig {
    /// The calls work queue. Default 1 GiB, 1 MiB a call.
    pub calls: StoreLimits,
    /// The session events stream. Default 1 GiB, 1 MiB an event.
    pub events: StoreLimits,
    /// The sessions bucket. Default 1 GiB, 256 KiB a session record.
    pub sessions: StoreLimits,
    /// The tasks bucket. Default 256 MiB, 64 KiB a task record.
    pub tasks: StoreLimits,
}

impl Default for StoreLimitsConfig {
    fn default() -> Self {
        Self {
            calls: limits::CALLS_LIMITS,
            events: limits::EVENTS_LIMITS,
            sessions: limits::SESSIONS_LIMITS,
            tasks: limits::TASKS_LIMITS,
        }
    }
}

/// Creates every stream and bucket with its limits, or brings the limits of existing ones to
/// the configured values (other settings are left as found: see
/// [`topology::ensure_limits`]). Runs before the gateway opens them, on its own connection.
pub async fn declare(config: &Config) -> Result<(), GatewayError> {
    let nats = bus_schema::connect::connect(&config.nats, "mcpbus-gateway-limits").await?;
    let js = jetstream::new(nats);
    let r = config.js_replicas;
    let l = config.store_limits;
    let mut calls = topology::calls_stream(r);
    l.calls.apply(&mut calls);
    let mut events = topology::events_stream(r, config.event_retention);
    l.events.apply(&mut events);
    let streams = [
        calls,
        events,
        topology::broadcast_stream(r, config.broadcast_retention),
        topology::kv_stream(WORKERS_KV, r),
        topology::kv_stream(CATALOG_KV, r),
        topology::kv_stream(SESSIONS_KV.with_limits(l.sessions), r),
        topology::kv_stream(CLUSTER_KV, r),
        topology::kv_stream(TASKS_KV.with_limits(l.tasks), r),
        topology::kv_stream(GATEWAYS_KV, r),
    ];
    for stream in streams {
        let (name, now) = (stream.name.clone(), StoreLimits::of(&stream));
        match topology::ensure_limits(&js, stream).await? {
            LimitsApplied::AsDeclared => {}
            LimitsApplied::Updated { was } => tracing::info!(
                stream = %name,
                max_bytes = now.max_bytes,
                max_msg_size = now.max_msg_size,
                was_max_bytes = was.max_bytes,
                was_max_msg_size = was.max_msg_size,
                "store limits updated"
            ),
            LimitsApplied::KeptMaxBytes { stored, was } => tracing::warn!(
                stream = %name,
                stored,
                max_bytes = now.max_bytes,
                kept_max_bytes = was.max_bytes,
                "the stream holds more than the configured max_bytes; kept its old limit, \
                 since lowering it would drop stored messages"
            ),
        }
    }
    Ok(())
}

/// Which store refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Store {
    Calls,
    Events,
    Sessions,
    Tasks,
}

impl Store {
    /// What a person calls it.
    fn what(self) -> &'static str {
        match self {
            Store::Calls => "call queue",
            Store::Events => "event store",
            Store::Sessions => "session store",
            Store::Tasks => "task store",
        }
    }

    /// The JetStream stream behind it, for operators (in `error.data.store`).
    pub fn stream(self) -> String {
        match self {
            Store::Calls => topology::CALLS_STREAM.to_owned(),
            Store::Events => topology::EVENTS_STREAM.to_owned(),
            Store::Sessions => format!("KV_{}", SESSIONS_KV.bucket),
            Store::Tasks => format!("KV_{}", TASKS_KV.bucket),
        }
    }

    /// The gateway flag that sets its limits.
    fn flag(self) -> &'static str {
        match self {
            Store::Calls => "calls",
            Store::Events => "events",
            Store::Sessions => "sessions",
            Store::Tasks => "tasks",
        }
    }
}

/// What JetStream stores for a KV record besides its value (subject, headers, framing),
/// rounded up.
const RECORD_OVERHEAD: u64 = 128;

/// Room kept for this many records of the size being written, for creates racing this one.
const ROOM_MARGIN: u64 = 4;

/// Whether the bucket behind `kv` has room for a new record of `record_bytes`.
///
/// nats-server 2.9 evicts a KV bucket's oldest records at its `max_bytes` instead of refusing
/// the write (ADR 0007, "Known gap"): without this check, a flood of new sessions or tasks
/// would silently end live ones. It costs one stream-info request per new record (an
/// `initialize`, a task), not per request; creates racing each other may overshoot by a few
/// records, which [`ROOM_MARGIN`] absorbs.
pub async fn has_room(
    kv: &async_nats::jetstream::kv::Store,
    record_bytes: usize,
) -> Result<bool, async_nats::Error> {
    // A read: asked again across a leader change or a moment without the JetStream API (a
    // server reloading its configuration answered "no responders" once; ADR 0031).
    let info = failover::retry(failover::deadline(), Repeat::Always, || {
        let mut stream = kv.stream.clone();
        async move { stream.info().await.cloned() }
    })
    .await
    .map_err(|e| -> async_nats::Error { e.to_string().into() })?;
    let max = info.config.max_bytes;
    let needed = (record_bytes as u64 + RECORD_OVERHEAD) * ROOM_MARGIN;
    Ok(max <= 0 || info.state.bytes + needed <= max as u64)
}

/// How often [`watch_usage`] samples the stores.
pub const USAGE_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Publishes what each store a client can fill holds (`mcpbus_store_bytes`,
/// `mcpbus_store_messages`), beside its limit (`mcpbus_store_max_bytes`), every
/// [`USAGE_EVERY`] until `stop`: how close the cluster is to refusing writes.
pub async fn watch_usage(
    js: jetstream::Context,
    limits: StoreLimitsConfig,
    stop: tokio_util::sync::CancellationToken,
) {
    let stores = [
        (Store::Calls, limits.calls),
        (Store::Events, limits.events),
        (Store::Sessions, limits.sessions),
        (Store::Tasks, limits.tasks),
    ];
    loop {
        for (store, limit) in stores {
            let label = [store.flag()];
            crate::metrics::METRICS
                .store_max_bytes
                .with_label_values(&label)
                .set(limit.max_bytes);
            let info = match js.get_stream(store.stream()).await {
                Ok(mut stream) => stream.info().await.map(|i| i.state.clone()),
                Err(e) => {
                    tracing::debug!(error = %e, store = store.flag(), "store usage unavailable");
                    continue;
                }
            };
            match info {
                Ok(state) => {
                    let metrics = &crate::metrics::METRICS;
                    metrics
                        .store_bytes
                        .with_label_values(&label)
                        .set(i64::try_from(state.bytes).unwrap_or(i64::MAX));
                    metrics
                        .store_messages
                        .with_label_values(&label)
                        .set(i64::try_from(state.messages).unwrap_or(i64::MAX));
                }
                Err(e) => {
                    tracing::debug!(error = %e, store = store.flag(), "store usage unavailable")
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(USAGE_EVERY) => {}
        }
    }
}

/// A write the store refused for its size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreRefused {
    #[error("the {} is full ({} reached its --store-{}-max-bytes limit); try again later", .0.what(), .0.stream(), .0.flag())]
    Full(Store),
    #[error("the request is too large for the {}: what it would store exceeds the --store-{}-max-msg-bytes limit of {}; send smaller ids, tokens or arguments", .0.what(), .0.flag(), .0.stream())]
    TooLarge(Store),
}

impl StoreRefused {
    /// `Some` when `err` is `store` refusing a write for its size limits.
    pub fn classify(store: Store, err: &(dyn std::error::Error + 'static)) -> Option<Self> {
        limits::refusal(err).map(|r| match r {
            StoreRefusal::TooLarge => Self::TooLarge(store),
            _ => Self::Full(store),
        })
    }

    pub fn store(self) -> Store {
        match self {
            Self::Full(s) | Self::TooLarge(s) => s,
        }
    }

    /// A short reason, machine-readable in `error.data.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Full(_) => "store_full",
            Self::TooLarge(_) => "too_large",
        }
    }
}
