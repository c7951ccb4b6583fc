//! Per-pool gauges: live workers (from the registry, on every catalogue change) and the
//! queue (from each pool consumer's info, sampled). Every gateway reports the same
//! cluster-wide values, so dashboards take `max by (pool)`, never a sum.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream;
use bus_schema::names::PoolName;
use bus_schema::topology;
use tokio_util::sync::CancellationToken;

use super::METRICS;
use crate::catalog::Catalog;

/// How often the queue gauges are sampled (one consumer-info request per pool).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(15);

/// Keeps `mcpbus_pool_workers` in step with the registry. A pool whose last worker left
/// stays at 0 (that is what the "no workers" alert looks for) until the gateway restarts.
#[derive(Debug, Default)]
pub struct PoolWorkers {
    known: HashSet<String>,
}

impl PoolWorkers {
    pub fn update(&mut self, live: &HashMap<PoolName, usize>) {
        for pool in &self.known {
            if !live.keys().any(|p| p.as_str() == pool) {
                METRICS.pool_workers.with_label_values(&[pool]).set(0);
            }
        }
        for (pool, n) in live {
            self.known.insert(pool.as_str().to_owned());
            METRICS
                .pool_workers
                .with_label_values(&[pool.as_str()])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }
}

/// Samples each pool's queue depth and unacknowledged deliveries every [`SAMPLE_EVERY`]
/// until `stop`: the pools are those with a live worker, and any that had one since start.
pub async fn watch_pools(js: jetstream::Context, catalog: Catalog, stop: CancellationToken) {
    let mut pools: HashSet<PoolName> = HashSet::new();
    loop {
        pools.extend(catalog.snapshot().pools());
        if let Ok(stream) = js.get_stream(topology::CALLS_STREAM).await {
            for pool in &pools {
                let name = topology::pool_consumer_name(pool);
                let label = [pool.as_str()];
                match stream.consumer_info(&name).await {
                    Ok(info) => {
                        let set = |g: &prometheus::IntGaugeVec, v: u64| {
                            g.with_label_values(&label)
                                .set(i64::try_from(v).unwrap_or(i64::MAX))
                        };
                        set(&METRICS.pool_queue_depth, info.num_pending);
                        set(&METRICS.pool_ack_pending, info.num_ack_pending as u64);
                    }
                    Err(e) => tracing::debug!(error = %e, pool = %pool, "pool queue unavailable"),
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
    }
}
