//! Registration, heartbeats and leaving: the kit watches the worker's key in the workers
//! bucket from before the worker starts, so it sees every put and the final delete, with the
//! server's timestamps.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use async_nats::jetstream::kv;
use bus_schema::messages::{decode, CatalogRecord, WorkerRecord};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::subjects;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use super::bus::Bus;
use super::expect::Check;
use super::kit::Registered;

/// One write of the worker's key.
#[derive(Debug, Clone)]
struct Write {
    /// Server time of the write, in nanoseconds since the epoch.
    created_ns: i128,
    /// When the kit saw it.
    seen: Instant,
    /// The value put, or `None` for a delete or purge.
    value: Option<Vec<u8>>,
}

pub struct RecordWatch {
    writes: Arc<Mutex<Vec<Write>>>,
    changed: watch::Sender<u64>,
}

/// Contract F: a worker under test heartbeats at least every 2 s.
const MAX_HEARTBEAT_MS: u64 = 2000;

/// Slack on the heartbeat bound for the kit's own scheduling.
const BEAT_SLACK: Duration = Duration::from_millis(250);

/// The longest gap between two puts `heartbeat_ms` allows ("~1.5 × heartbeat_ms").
pub fn beat_bound(heartbeat_ms: u64) -> Duration {
    Duration::from_millis(heartbeat_ms * 3 / 2) + BEAT_SLACK
}

impl RecordWatch {
    /// Starts watching `<pool>.<instance>` before the worker exists.
    pub async fn start(bus: &Bus, instance: &InstanceId) -> Result<Self> {
        let key = subjects::worker_key(&bus.pool, instance);
        let mut entries = bus.workers.watch(key).await?;
        let writes = Arc::new(Mutex::new(Vec::new()));
        let (changed, _) = watch::channel(0u64);
        let (w, c) = (writes.clone(), changed.clone());
        tokio::spawn(async move {
            while let Some(Ok(entry)) = entries.next().await {
                let value = (entry.operation == kv::Operation::Put).then(|| entry.value.to_vec());
                w.lock().expect("not poisoned").push(Write {
                    created_ns: entry.created.unix_timestamp_nanos(),
                    seen: Instant::now(),
                    value,
                });
                c.send_modify(|n| *n += 1);
            }
        });
        Ok(Self { writes, changed })
    }

    fn snapshot(&self) -> Vec<Write> {
        self.writes.lock().expect("not poisoned").clone()
    }

    /// Waits until `done` holds for the writes so far, at most `within`.
    async fn wait(&self, within: Duration, done: impl Fn(&[Write]) -> bool) -> Vec<Write> {
        let until = Instant::now() + within;
        let mut changed = self.changed.subscribe();
        loop {
            let writes = self.snapshot();
            let left = until.saturating_duration_since(Instant::now());
            if done(&writes)
                || left.is_zero()
                || tokio::time::timeout(left, changed.changed()).await.is_err()
            {
                return self.snapshot();
            }
        }
    }

    /// Waits for the first put, then checks the record and its catalogue.
    pub async fn registered(
        &self,
        bus: &Bus,
        instance: &InstanceId,
        within: Duration,
    ) -> (Option<Registered>, Check) {
        let writes = self
            .wait(within, |w| w.iter().any(|w| w.value.is_some()))
            .await;
        let Some(value) = writes.iter().find_map(|w| w.value.clone()) else {
            return (
                None,
                Err(format!(
                    "no worker record under the instance's key within {within:?}"
                )),
            );
        };
        let record: WorkerRecord = match decode(&value) {
            Ok(r) => r,
            Err(e) => {
                return (
                    None,
                    Err(format!("the worker record is not a WorkerRecord: {e}")),
                )
            }
        };
        let catalog_key = subjects::catalog_key(&bus.pool, &record.catalog_digest);
        let catalog = match bus.catalogs.get(&catalog_key).await {
            Ok(Some(bytes)) => decode::<CatalogRecord>(&bytes)
                .map_err(|e| format!("catalogue {catalog_key} is not a CatalogRecord: {e}")),
            Ok(None) => Err(format!(
                "no catalogue under {catalog_key} when the worker record named it"
            )),
            Err(e) => Err(format!("reading catalogue {catalog_key}: {e}")),
        };
        let check = record_rules(&record, &bus.pool, instance).and_then(|()| {
            let c = catalog.as_ref().map_err(Clone::clone)?;
            if c.pool != bus.pool || c.digest != record.catalog_digest {
                return Err(format!(
                    "the catalogue names pool {} digest {}, the record pool {} digest {}",
                    c.pool, c.digest, bus.pool, record.catalog_digest
                ));
            }
            Ok(())
        });
        let registered = Registered {
            record,
            catalog: catalog.ok(),
        };
        (Some(registered), check)
    }

    /// The record was re-put at least twice after the first, never more than ~1.5 ×
    /// `heartbeat_ms` apart, up to now.
    pub async fn heartbeats(&self, heartbeat_ms: u64) -> Check {
        let bound = beat_bound(heartbeat_ms);
        let puts = |w: &[Write]| w.iter().filter(|w| w.value.is_some()).count();
        let late = |w: &[Write]| w.last().is_some_and(|l| l.seen.elapsed() > bound);
        let writes = self.wait(bound * 3, |w| puts(w) >= 3 || late(w)).await;
        let puts: Vec<&Write> = writes.iter().filter(|w| w.value.is_some()).collect();
        if let Some(deleted) = writes.iter().position(|w| w.value.is_none()) {
            return Err(format!(
                "the record was deleted while the worker ran (write {deleted})"
            ));
        }
        for (i, pair) in puts.windows(2).enumerate() {
            let gap = Duration::from_nanos((pair[1].created_ns - pair[0].created_ns).max(0) as u64);
            if gap > bound {
                return Err(format!(
                    "put {} came {gap:?} after put {i}; heartbeat_ms {heartbeat_ms} allows {bound:?}",
                    i + 1
                ));
            }
        }
        match puts.last() {
            None => Err("no worker record".to_owned()),
            Some(last) if last.seen.elapsed() > bound => Err(format!(
                "no put for {:?} after {} puts; heartbeat_ms {heartbeat_ms} allows {bound:?}",
                last.seen.elapsed(),
                puts.len()
            )),
            Some(_) if puts.len() < 3 => Err(format!("only {} puts of the record", puts.len())),
            Some(_) => Ok(()),
        }
    }

    /// How long before its delete the record was last put (server times): a draining worker
    /// keeps heartbeating while its calls run (contract E.2).
    pub fn last_put_before_delete(&self) -> Option<Duration> {
        let writes = self.snapshot();
        let deleted = writes.iter().rposition(|w| w.value.is_none())?;
        let put = writes[..deleted].iter().rev().find(|w| w.value.is_some())?;
        let gap = writes[deleted].created_ns - put.created_ns;
        Some(Duration::from_nanos(gap.max(0) as u64))
    }

    /// Whether the key was deleted (or purged), waiting at most `within`.
    pub async fn deleted(&self, within: Duration) -> bool {
        let gone = |w: &[Write]| w.last().is_some_and(|w| w.value.is_none());
        gone(&self.wait(within, gone).await)
    }
}

/// The record's own rules (PROTOCOL.md section 4, §4.2 and §10).
fn record_rules(r: &WorkerRecord, pool: &PoolName, instance: &InstanceId) -> Check {
    if r.pool != *pool || r.instance != *instance {
        return Err(format!(
            "the record names {}/{}, the worker was started as {pool}/{instance} (MCPBUS_POOL, MCPBUS_INSTANCE)",
            r.pool, r.instance
        ));
    }
    if r.heartbeat_ms == 0 || r.heartbeat_ms > MAX_HEARTBEAT_MS {
        return Err(format!(
            "heartbeat_ms {} is not in 1..={MAX_HEARTBEAT_MS}",
            r.heartbeat_ms
        ));
    }
    if r.ttl_ms < 2 * r.heartbeat_ms {
        return Err(format!(
            "ttl_ms {} is less than 2 × heartbeat_ms {}",
            r.ttl_ms, r.heartbeat_ms
        ));
    }
    if !(2..=16).contains(&r.max_in_flight) {
        return Err(format!(
            "max_in_flight {} is not in 2..=16",
            r.max_in_flight
        ));
    }
    Ok(())
}

/// The kit tools of PROTOCOL.md §10: name, argument names, whether idempotent
/// (`None`: either is fine). `kit_ask` is optional and checked only when declared.
const KIT_TOOLS: [(&str, &[&str], Option<bool>); 6] = [
    ("kit_echo", &["text"], Some(true)),
    ("kit_once", &["text"], Some(false)),
    ("kit_progress", &["steps", "delay_ms"], Some(true)),
    ("kit_slow", &["ms"], Some(false)),
    ("kit_fail", &["message"], Some(true)),
    ("kit_ask", &[], Some(false)),
];

/// The catalogue lists the kit tools, each with an object inputSchema naming its arguments.
pub fn catalog_rules(registered: Option<&Registered>) -> Check {
    let catalog = registered
        .and_then(|r| r.catalog.as_ref())
        .ok_or("no catalogue was registered")?;
    for (name, args, idempotent) in KIT_TOOLS {
        let Some(entry) = catalog.tools.iter().find(|t| t.name() == Some(name)) else {
            if name == "kit_ask" {
                continue;
            }
            return Err(format!("tool {name} is not in the catalogue"));
        };
        let schema = entry.tool.get("inputSchema");
        if schema.and_then(|s| s.get("type")).and_then(Value::as_str) != Some("object") {
            return Err(format!(
                "{name}: inputSchema must be an object schema, got {schema:?}"
            ));
        }
        let properties = schema.and_then(|s| s.get("properties"));
        if let Some(missing) = args
            .iter()
            .find(|a| properties.and_then(|p| p.get(**a)).is_none())
        {
            return Err(format!("{name}: inputSchema has no property {missing:?}"));
        }
        if idempotent.is_some_and(|want| entry.idempotent() != want) {
            return Err(format!(
                "{name}: annotations.idempotentHint must be {}",
                if entry.idempotent() {
                    "false or absent"
                } else {
                    "true"
                }
            ));
        }
    }
    Ok(())
}
