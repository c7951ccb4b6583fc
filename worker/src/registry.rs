//! Registration: the worker's catalogue and its heartbeat in the cluster's KV buckets.
//!
//! The catalogue is written once per content (content-addressed key) and refreshed hourly so
//! it never ages out; the small liveness record is re-put every heartbeat. Gateways watch
//! both buckets. Deleting the liveness record is a graceful goodbye; a killed worker simply
//! stops heartbeating and gateways expire it.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bus_schema::messages::{encode, CatalogRecord, ToolEntry, WorkerRecord};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::topology::{self, CATALOG_KV, CATALOG_REFRESH, WORKERS_KV};
use bus_schema::{subjects, PROTOCOL_VERSION};
use tokio_util::sync::CancellationToken;

use crate::resource::{PromptDef, ResourceDef};
use crate::tool::ToolDef;
use crate::worker::WorkerConfig;
use crate::WorkerError;

/// Everything a worker serves, as it registers it.
pub(crate) struct Served<'a> {
    pub tools: &'a [ToolDef],
    pub resources: &'a [ResourceDef],
    pub prompts: &'a [PromptDef],
}

pub(crate) struct Registration {
    workers: kv::Store,
    catalog: kv::Store,
    worker_key: String,
    catalog_key: String,
    record: WorkerRecord,
    catalog_record: CatalogRecord,
    heartbeat: Duration,
}

impl Registration {
    pub(crate) async fn open(
        js: &jetstream::Context,
        pool: &PoolName,
        instance: &InstanceId,
        served: Served<'_>,
        config: &WorkerConfig,
    ) -> Result<Self, WorkerError> {
        let workers = topology::ensure_kv(js, WORKERS_KV, config.js_replicas).await?;
        let catalog = topology::ensure_kv(js, CATALOG_KV, config.js_replicas).await?;
        let entries: Vec<ToolEntry> = served
            .tools
            .iter()
            .map(|t| ToolEntry {
                tool: t.tool.clone(),
                timeout_ms: t.timeout.map(|d| d.as_millis() as u64),
            })
            .collect();
        let decls = |template: bool| -> Vec<_> {
            served
                .resources
                .iter()
                .filter(|r| r.template == template)
                .map(|r| r.decl.clone())
                .collect()
        };
        let (resources, resource_templates) = (decls(false), decls(true));
        let prompts: Vec<_> = served.prompts.iter().map(|p| p.decl.clone()).collect();
        let digest = bus_schema::messages::digest([
            serde_json::to_vec(&entries).unwrap_or_default(),
            serde_json::to_vec(&(&resources, &resource_templates, &prompts)).unwrap_or_default(),
        ]);
        Ok(Self {
            workers,
            catalog,
            worker_key: subjects::worker_key(pool, instance),
            catalog_key: subjects::catalog_key(pool, &digest),
            record: WorkerRecord {
                protocol: PROTOCOL_VERSION,
                pool: pool.clone(),
                instance: instance.clone(),
                catalog_digest: digest.clone(),
                heartbeat_ms: config.heartbeat.as_millis() as u64,
                ttl_ms: config.ttl.as_millis() as u64,
                max_in_flight: config.max_in_flight,
                sdk: concat!("mcpbus-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
            },
            catalog_record: CatalogRecord {
                protocol: PROTOCOL_VERSION,
                pool: pool.clone(),
                digest,
                tools: entries,
                resources,
                resource_templates,
                prompts,
            },
            heartbeat: config.heartbeat,
        })
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

    async fn beat(&self) -> Result<(), async_nats::Error> {
        self.workers
            .put(&self.worker_key, encode(&self.record))
            .await?;
        Ok(())
    }

    /// Heartbeats until `stop` fires. A failed beat (NATS away) is logged and retried on the
    /// next tick; the client reconnects on its own.
    pub(crate) async fn keep_alive(&self, stop: CancellationToken) {
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
                _ = tick.tick() => {
                    if let Err(e) = self.beat().await {
                        tracing::warn!(error = %e, "heartbeat failed; retrying");
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
