//! Registration: the worker's catalogue and its heartbeat in the cluster's KV buckets.
//!
//! The catalogue is written once per content (content-addressed key) and refreshed hourly so
//! it never ages out; the small liveness record is re-put every heartbeat. Gateways watch
//! both buckets. Deleting the liveness record is a graceful goodbye; a killed worker simply
//! stops heartbeating and gateways expire it.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bus_schema::failover::{self, Repeat};
use bus_schema::messages::{encode, CatalogRecord, ToolEntry, WorkerRecord};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::topology::{self, CATALOG_KV, CATALOG_REFRESH, WORKERS_KV};
use bus_schema::{subjects, PROTOCOL_VERSION};
use tokio_util::sync::CancellationToken;

use crate::catalogue::{Catalogue, Contents};
use crate::config::WorkerConfig;
use crate::error::WorkerError;

pub(crate) struct Registration {
    workers: kv::Store,
    catalog: kv::Store,
    worker_key: String,
    catalog_key: String,
    record: WorkerRecord,
    catalog_record: CatalogRecord,
    heartbeat: Duration,
    /// A changed catalogue is not stored yet.
    catalog_pending: bool,
}

impl Registration {
    pub(crate) async fn open(
        js: &jetstream::Context,
        pool: &PoolName,
        instance: &InstanceId,
        served: &Contents,
        config: &WorkerConfig,
    ) -> Result<Self, WorkerError> {
        let workers = topology::open_kv_waiting(js, WORKERS_KV).await?;
        let catalog = topology::open_kv_waiting(js, CATALOG_KV).await?;
        let catalog_record = catalog_record(pool, served);
        // Best effort, and bounded: reading the bucket must never keep a worker from starting.
        let registered_ms = tokio::time::timeout(REGISTRY_READ, pool_registered_ms(js, pool))
            .await
            .unwrap_or_else(|_| {
                tracing::warn!("reading the pool's registration time took too long; using now");
                crate::clock::now_ms()
            });
        Ok(Self {
            workers,
            catalog,
            worker_key: subjects::worker_key(pool, instance),
            catalog_key: subjects::catalog_key(pool, &catalog_record.digest),
            record: WorkerRecord {
                protocol: PROTOCOL_VERSION,
                pool: pool.clone(),
                instance: instance.clone(),
                catalog_digest: catalog_record.digest.clone(),
                heartbeat_ms: config.heartbeat.as_millis() as u64,
                // PROTOCOL §4.2: one late beat must not drop the instance.
                ttl_ms: config.ttl.max(config.heartbeat * 2).as_millis() as u64,
                max_in_flight: config.max_in_flight,
                sdk: concat!("mcpbus-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
                registered_ms: Some(registered_ms),
                alive_subscription: false,
            },
            catalog_record,
            heartbeat: config.heartbeat,
            catalog_pending: false,
        })
    }

    /// Says in the record that this instance holds its alive subscription (ADR 0029).
    pub(crate) fn set_alive_subscription(&mut self, held: bool) {
        self.record.alive_subscription = held;
    }

    /// Switches to a changed catalogue: the new record under its new digest, then a beat
    /// naming it, so gateways pick it up within one KV watch delivery.
    async fn republish(&mut self, served: &Contents) {
        let record = catalog_record(&self.record.pool, served);
        if record.digest == self.catalog_record.digest {
            return;
        }
        self.catalog_key = subjects::catalog_key(&self.record.pool, &record.digest);
        self.record.catalog_digest = record.digest.clone();
        self.catalog_record = record;
        self.republish_pending().await;
    }

    async fn republish_pending(&mut self) {
        match self.register().await {
            Ok(()) => {
                self.catalog_pending = false;
                tracing::info!(digest = %self.record.catalog_digest, "catalogue changed; republished");
            }
            Err(e) => {
                // The beat must not name a catalogue that is not stored: retry both next tick.
                self.catalog_pending = true;
                tracing::warn!(error = %e, "publishing the changed catalogue failed; retrying");
            }
        }
    }

    /// Publishes the catalogue, then the first heartbeat: gateways list a pool only once they
    /// have both, so the order avoids a window where the instance is live with no tools.
    pub(crate) async fn register(&self) -> Result<(), WorkerError> {
        self.catalog
            .put(&self.catalog_key, encode(&self.catalog_record))
            .await
            .map_err(|e| WorkerError::Register(e.into()))?;
        self.beat().await.map_err(WorkerError::Register)
    }

    /// Puts the liveness record, retried across a leader change of the bucket's stream
    /// (ADR 0031) for as long as the record would live: a beat that lands late still beats
    /// the TTL, and repeating a put of the same record is harmless.
    async fn beat(&self) -> Result<(), async_nats::Error> {
        let until = tokio::time::Instant::now() + Duration::from_millis(self.record.ttl_ms);
        let record = encode(&self.record);
        failover::retry(until, Repeat::Always, || {
            self.workers.put(&self.worker_key, record.clone())
        })
        .await?;
        Ok(())
    }

    /// Heartbeats until `stop` fires. A failed beat (NATS away) is logged and retried on the
    /// next tick; the client reconnects on its own.
    pub(crate) async fn keep_alive(&mut self, stop: CancellationToken, catalogue: Catalogue) {
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refresh = tokio::time::interval_at(
            tokio::time::Instant::now() + CATALOG_REFRESH,
            CATALOG_REFRESH,
        );
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = refresh.tick() => {
                    if let Err(e) = self.catalog.put(&self.catalog_key, encode(&self.catalog_record)).await {
                        tracing::warn!(error = %e, "catalogue refresh failed");
                    }
                }
                _ = catalogue.changed() => self.republish(&catalogue.snapshot()).await,
                _ = tick.tick() => {
                    if self.catalog_pending {
                        self.republish_pending().await;
                    } else {
                        // A beat may retry for a while; a drain must not wait for it.
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            beat = self.beat() => if let Err(e) = beat {
                                tracing::warn!(error = %e, "heartbeat failed; retrying");
                            },
                        }
                    }
                }
            }
        }
    }

    /// Removes the liveness record so gateways drop this instance at once.
    pub(crate) async fn deregister(&self) {
        if let Err(e) = self.workers.delete(&self.worker_key).await {
            tracing::warn!(error = %e, "deregistration failed; gateways will expire this worker");
        }
    }
}

/// How long a starting worker reads its pool's registration time before giving up on it.
const REGISTRY_READ: Duration = Duration::from_secs(3);

/// Since when `pool` has served: the `registered_ms` of its most recently written live
/// record, else now. A new replica inherits it, so every replica of a pool states the same
/// time, and a pool replaced replica by replica (a rolling upgrade) keeps the names it
/// registered first (ADR 0015). Read by one direct get, the only way a worker may read the
/// bucket (ADR 0013). Best effort: a record that cannot be read means now.
async fn pool_registered_ms(js: &jetstream::Context, pool: &PoolName) -> u64 {
    let now = crate::clock::now_ms();
    let Ok(stream) = js.get_stream(topology::kv_stream_name(WORKERS_KV)).await else {
        return now;
    };
    let Ok(last) = stream
        .direct_get_last_for_subject(topology::pool_worker_records(pool))
        .await
    else {
        return now;
    };
    // A deleted key's marker has an empty body and does not decode.
    let Ok(record) = bus_schema::messages::decode::<WorkerRecord>(&last.payload) else {
        return now;
    };
    let written_ms = (last.time.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    let live = written_ms.saturating_add(record.ttl_ms) >= now;
    match record.registered_ms {
        Some(since) if record.pool == *pool && live => since.min(now),
        _ => now,
    }
}

/// The catalogue record of `served`, with its content digest.
fn catalog_record(pool: &PoolName, served: &Contents) -> CatalogRecord {
    let tools: Vec<ToolEntry> = served
        .tools
        .values()
        .map(|t| ToolEntry {
            tool: t.tool.clone(),
            timeout_ms: t.timeout.map(|d| d.as_millis() as u64),
        })
        .collect();
    let decls = |template: bool| -> Vec<_> {
        served
            .resources
            .values()
            .filter(|r| r.template == template)
            .map(|r| r.decl.clone())
            .collect()
    };
    let (resources, resource_templates) = (decls(false), decls(true));
    let prompts: Vec<_> = served.prompts.values().map(|p| p.decl.clone()).collect();
    let digest = bus_schema::messages::digest([
        serde_json::to_vec(&tools).unwrap_or_default(),
        serde_json::to_vec(&(&resources, &resource_templates, &prompts)).unwrap_or_default(),
    ]);
    CatalogRecord {
        protocol: PROTOCOL_VERSION,
        pool: pool.clone(),
        digest,
        tools,
        resources,
        resource_templates,
        prompts,
    }
}
