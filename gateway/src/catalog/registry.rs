//! The live-worker registry as one gateway sees it: which instances are alive, which
//! catalogue each serves, and the snapshot all of that adds up to.
//!
//! Pure state, no I/O: the watcher in `mod.rs` feeds it KV entries and clock ticks, which keeps
//! the expiry rules testable with plain `Instant`s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus_schema::messages::{CatalogRecord, WorkerRecord};
use bus_schema::names::PoolName;
use bus_schema::subjects;

use super::claims::{self, NameKind, PoolClaim};
use super::snapshot::{CatalogSnapshot, ItemRoute, ListKind, ToolRoute};

/// How long a departed pool's tool names are remembered for a clearer error.
const DEPARTED_MEMORY: Duration = Duration::from_secs(600);

/// Shortest TTL we honour, so a mis-configured worker cannot flap in and out.
const MIN_TTL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Instance {
    pool: PoolName,
    digest: String,
    /// The digest before the last change: served until the new catalogue's record arrives
    /// (the two buckets are watched separately, so a beat may overtake its catalogue).
    previous_digest: Option<String>,
    last_seen: Instant,
    ttl: Duration,
    /// Registration order: the newest instance's catalogue is the pool's catalogue, so a
    /// rolling upgrade switches over as soon as the first new replica is up.
    order: u64,
    /// Since when the instance says its pool has served (`WorkerRecord::registered_ms`):
    /// which pool keeps a name several register (`claims.rs`).
    registered_ms: Option<u64>,
}

#[derive(Debug)]
pub struct Registry {
    instances: HashMap<String, Instance>,
    catalogs: HashMap<String, Arc<CatalogRecord>>,
    departed: HashMap<String, (PoolName, Instant)>,
    next_order: u64,
    max_ttl: Duration,
}

impl Registry {
    pub fn new(max_ttl: Duration) -> Self {
        Self {
            instances: HashMap::new(),
            catalogs: HashMap::new(),
            departed: HashMap::new(),
            next_order: 0,
            max_ttl,
        }
    }

    /// A heartbeat. Returns whether the catalogue may have changed (a new instance, or a new
    /// catalogue for a known one); a plain heartbeat changes nothing.
    pub fn put_worker(&mut self, key: &str, record: WorkerRecord, seen: Instant) -> bool {
        let ttl = Duration::from_millis(record.ttl_ms).clamp(MIN_TTL, self.max_ttl);
        match self.instances.get_mut(key) {
            Some(i) if i.digest == record.catalog_digest => {
                i.last_seen = i.last_seen.max(seen);
                i.ttl = ttl;
                // Constant while an instance runs; a change can move a contested name.
                let moved = i.registered_ms != record.registered_ms;
                i.registered_ms = record.registered_ms;
                moved
            }
            existing => {
                let previous_digest = existing.map(|i| i.digest.clone());
                self.next_order += 1;
                self.instances.insert(
                    key.to_owned(),
                    Instance {
                        pool: record.pool,
                        digest: record.catalog_digest,
                        previous_digest,
                        last_seen: seen,
                        ttl,
                        order: self.next_order,
                        registered_ms: record.registered_ms,
                    },
                );
                true
            }
        }
    }

    /// Whether the instance under `key` is listed.
    pub fn is_live(&self, key: &str) -> bool {
        self.instances.contains_key(key)
    }

    /// How many live instances each pool has.
    pub fn workers_per_pool(&self) -> HashMap<PoolName, usize> {
        let mut n = HashMap::new();
        for inst in self.instances.values() {
            *n.entry(inst.pool.clone()).or_insert(0) += 1;
        }
        n
    }

    /// A graceful goodbye (the worker deleted its key).
    pub fn remove_worker(&mut self, key: &str, now: Instant) -> bool {
        match self.instances.remove(key) {
            Some(gone) => {
                self.note_departure(&gone.pool, &gone.digest, now);
                true
            }
            None => false,
        }
    }

    /// A catalogue record. Records are content-addressed, so one we already hold is a no-op.
    pub fn put_catalog(&mut self, key: &str, record: CatalogRecord) -> bool {
        if self.catalogs.contains_key(key) {
            return false;
        }
        self.catalogs.insert(key.to_owned(), Arc::new(record));
        true
    }

    /// Forgives every instance `gap` of silence: time in which the bucket could take no
    /// beat (ADR 0031). Never moves a beat past `now`.
    pub fn pardon(&mut self, gap: Duration, now: Instant) {
        tracing::info!(
            ?gap,
            "the workers bucket was unverifiable; its silence is forgiven"
        );
        for i in self.instances.values_mut() {
            i.last_seen = (i.last_seen + gap).min(now);
        }
    }

    /// Drops instances whose heartbeat is older than their TTL plus `grace` (patience while
    /// a NATS node is missing). Returns whether any left.
    pub fn expire(&mut self, now: Instant, grace: Duration) -> bool {
        let dead: Vec<String> = self
            .instances
            .iter()
            .filter(|(_, i)| now.saturating_duration_since(i.last_seen) > i.ttl + grace)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &dead {
            tracing::info!(worker = %key, "worker heartbeat expired");
            self.remove_worker(key, now);
        }
        self.departed
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < DEPARTED_MEMORY);
        !dead.is_empty()
    }

    fn note_departure(&mut self, pool: &PoolName, digest: &str, now: Instant) {
        if self.instances.values().any(|i| &i.pool == pool) {
            return;
        }
        if let Some(cat) = self.catalogs.get(&subjects::catalog_key(pool, digest)) {
            for t in cat.tools.iter().filter_map(|t| t.name()) {
                self.departed.insert(t.to_owned(), (pool.clone(), now));
            }
        }
    }

    /// The catalogue as of now: for each pool with a live instance, the tools of its newest
    /// instance whose catalogue we hold, less the names another pool registered first.
    pub fn snapshot(&self, default_timeout: Duration) -> CatalogSnapshot {
        let mut newest: HashMap<&PoolName, (&Instance, &Arc<CatalogRecord>)> = HashMap::new();
        let mut since: HashMap<&PoolName, Option<u64>> = HashMap::new();
        for inst in self.instances.values() {
            let pool_since = since.entry(&inst.pool).or_insert(inst.registered_ms);
            *pool_since = claims::earliest(*pool_since, inst.registered_ms);
            let known = |digest: &str| {
                self.catalogs
                    .get(&subjects::catalog_key(&inst.pool, digest))
            };
            let Some(cat) =
                known(&inst.digest).or_else(|| inst.previous_digest.as_deref().and_then(known))
            else {
                continue;
            };
            let slot = newest.entry(&inst.pool).or_insert((inst, cat));
            if inst.order > slot.0.order {
                *slot = (inst, cat);
            }
        }
        let pools: Vec<PoolClaim<'_>> = newest
            .iter()
            .map(|(pool, (_, cat))| PoolClaim {
                pool,
                registered_ms: since.get(pool).copied().flatten(),
                catalog: cat,
            })
            .collect();
        let claims = claims::resolve(&pools);
        let mut routes = Vec::new();
        let mut items: HashMap<ListKind, Vec<ItemRoute>> = HashMap::new();
        for (pool, (_, cat)) in &newest {
            let pool = *pool;
            for (kind, list) in [
                (ListKind::Resources, &cat.resources),
                (ListKind::Templates, &cat.resource_templates),
                (ListKind::Prompts, &cat.prompts),
            ] {
                let (key, _) = kind.fields();
                let valid = list.iter().filter(|i| {
                    i.get(key).and_then(|v| v.as_str()).is_some_and(|k| {
                        !k.is_empty() && claims.keeps(NameKind::of_list(kind), k, pool)
                    })
                });
                items
                    .entry(kind)
                    .or_default()
                    .extend(valid.map(|i| ItemRoute {
                        pool: pool.clone(),
                        item: Arc::new(i.clone()),
                    }));
            }
            for entry in &cat.tools {
                let name = entry.name().unwrap_or_default();
                if !claims.keeps(NameKind::Tool, name, pool) {
                    continue;
                }
                if !valid_tool(&entry.tool) {
                    tracing::warn!(%pool, tool = ?entry.tool.get("name"), "ignoring malformed tool");
                    continue;
                }
                routes.push(ToolRoute {
                    pool: pool.clone(),
                    tool: Arc::new(entry.tool.clone()),
                    timeout: Some(
                        entry
                            .timeout_ms
                            .map(Duration::from_millis)
                            .unwrap_or(default_timeout),
                    ),
                });
            }
        }
        let departed = self
            .departed
            .iter()
            .map(|(name, (pool, _))| (name.clone(), pool.clone()))
            .collect();
        CatalogSnapshot::new(routes, departed)
            .with_items(items)
            .with_conflicts(claims.into_conflicts())
    }
}

/// A tool must have a non-empty string name and an object `inputSchema` to be listed;
/// anything else would break clients that validate `tools/list`.
fn valid_tool(tool: &serde_json::Map<String, serde_json::Value>) -> bool {
    let named = tool
        .get("name")
        .and_then(|n| n.as_str())
        .is_some_and(|n| !n.is_empty());
    named && tool.get("inputSchema").is_some_and(|s| s.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::snapshot::Lookup;
    use bus_schema::messages::ToolEntry;
    use bus_schema::names::InstanceId;
    use serde_json::json;

    fn worker(pool: &str, inst: &str, digest: &str) -> WorkerRecord {
        WorkerRecord {
            protocol: bus_schema::PROTOCOL_VERSION,
            pool: PoolName::new(pool).unwrap(),
            instance: InstanceId::new(inst).unwrap(),
            catalog_digest: digest.into(),
            heartbeat_ms: 1000,
            ttl_ms: 3000,
            max_in_flight: 1,
            sdk: String::new(),
            registered_ms: Some(1),
            alive_subscription: false,
        }
    }

    fn catalog(pool: &str, digest: &str, tools: &[&str]) -> CatalogRecord {
        CatalogRecord {
            protocol: bus_schema::PROTOCOL_VERSION,
            pool: PoolName::new(pool).unwrap(),
            digest: digest.into(),
            tools: tools
                .iter()
                .map(|n| ToolEntry {
                    tool: json!({"name": n, "inputSchema": {"type": "object"}})
                        .as_object()
                        .unwrap()
                        .clone(),
                    timeout_ms: None,
                })
                .collect(),
            resources: Vec::new(),
            resource_templates: Vec::new(),
            prompts: Vec::new(),
        }
    }

    const DEFAULT: Duration = Duration::from_secs(300);

    #[test]
    fn replicas_of_a_pool_list_each_tool_once() {
        let t0 = Instant::now();
        let mut r = Registry::new(Duration::from_secs(8));
        r.put_catalog("p.d1", catalog("p", "d1", &["a", "b"]));
        assert!(r.put_worker("p.i1", worker("p", "i1", "d1"), t0));
        assert!(r.put_worker("p.i2", worker("p", "i2", "d1"), t0));
        assert!(
            !r.put_worker("p.i1", worker("p", "i1", "d1"), t0),
            "heartbeat is no change"
        );
        assert_eq!(r.snapshot(DEFAULT).tools().len(), 2);
    }

    #[test]
    fn silent_workers_expire_after_their_ttl() {
        let t0 = Instant::now();
        let mut r = Registry::new(Duration::from_secs(8));
        r.put_catalog("p.d1", catalog("p", "d1", &["a"]));
        r.put_worker("p.i1", worker("p", "i1", "d1"), t0);
        assert!(!r.expire(t0 + Duration::from_millis(2900), Duration::ZERO));
        assert!(r.expire(t0 + Duration::from_millis(3100), Duration::ZERO));
        let snap = r.snapshot(DEFAULT);
        assert!(snap.tools().is_empty());
        assert!(matches!(snap.lookup("a"), Lookup::Departed(_)));
    }

    #[test]
    fn silence_while_the_bucket_could_take_no_beat_is_forgiven() {
        let t0 = Instant::now();
        let mut r = Registry::new(Duration::from_secs(8));
        r.put_catalog("p.d1", catalog("p", "d1", &["a"]));
        r.put_worker("p.i1", worker("p", "i1", "d1"), t0);
        let back = t0 + Duration::from_secs(7);
        r.pardon(Duration::from_secs(5), back);
        assert!(
            !r.expire(back, Duration::ZERO),
            "2 s of silence that counts, TTL 3 s"
        );
        assert!(r.expire(back + Duration::from_millis(1100), Duration::ZERO));
    }

    #[test]
    fn a_grace_allows_silence_past_the_ttl() {
        let t0 = Instant::now();
        let mut r = Registry::new(Duration::from_secs(8));
        r.put_catalog("p.d1", catalog("p", "d1", &["a"]));
        r.put_worker("p.i1", worker("p", "i1", "d1"), t0);
        let grace = Duration::from_secs(2);
        assert!(!r.expire(t0 + Duration::from_millis(4900), grace));
        assert!(r.expire(t0 + Duration::from_millis(5100), grace));
    }

    #[test]
    fn claimed_ttls_are_clamped_to_the_gateway_bound() {
        let t0 = Instant::now();
        let mut r = Registry::new(Duration::from_secs(8));
        let mut w = worker("p", "i1", "d1");
        w.ttl_ms = 3_600_000;
        r.put_catalog("p.d1", catalog("p", "d1", &["a"]));
        r.put_worker("p.i1", w, t0);
        assert!(r.expire(t0 + Duration::from_millis(8100), Duration::ZERO));
    }

    #[test]
    fn the_newest_instance_decides_the_pool_catalogue() {
        let t0 = Instant::now();
        let mut r = Registry::new(Duration::from_secs(8));
        r.put_catalog("p.d1", catalog("p", "d1", &["old"]));
        r.put_catalog("p.d2", catalog("p", "d2", &["new"]));
        r.put_worker("p.i1", worker("p", "i1", "d1"), t0);
        r.put_worker("p.i2", worker("p", "i2", "d2"), t0);
        let snap = r.snapshot(DEFAULT);
        assert!(matches!(snap.lookup("new"), Lookup::Live(_)));
        assert_eq!(snap.tools().len(), 1);
    }

    #[test]
    fn a_name_stays_with_the_pool_registered_first_until_it_leaves() {
        let t0 = Instant::now();
        let mut r = Registry::new(Duration::from_secs(8));
        r.put_catalog("demo.d1", catalog("demo", "d1", &["echo", "add"]));
        r.put_catalog("aaa.d2", catalog("aaa", "d2", &["echo", "steal"]));
        let (mut first, mut late) = (worker("demo", "i1", "d1"), worker("aaa", "i2", "d2"));
        first.registered_ms = Some(1_000);
        late.registered_ms = Some(2_000);
        r.put_worker("demo.i1", first, t0);
        r.put_worker("aaa.i2", late, t0);
        let snap = r.snapshot(DEFAULT);
        assert!(matches!(snap.lookup("echo"), Lookup::Live(t) if t.pool.as_str() == "demo"));
        assert!(matches!(snap.lookup("steal"), Lookup::Live(t) if t.pool.as_str() == "aaa"));
        assert_eq!(snap.tools().len(), 3);
        assert_eq!(snap.conflicts().len(), 1);
        assert_eq!(snap.conflicts()[0].refused.as_str(), "aaa");

        assert!(r.remove_worker("demo.i1", t0));
        let snap = r.snapshot(DEFAULT);
        assert!(matches!(snap.lookup("echo"), Lookup::Live(t) if t.pool.as_str() == "aaa"));
        assert!(snap.conflicts().is_empty());
    }

    #[test]
    fn an_instance_without_a_known_catalogue_is_not_listed() {
        let mut r = Registry::new(Duration::from_secs(8));
        r.put_worker("p.i1", worker("p", "i1", "d9"), Instant::now());
        assert!(r.snapshot(DEFAULT).tools().is_empty());
    }

    #[test]
    fn a_beat_that_overtakes_its_catalogue_keeps_the_previous_one() {
        let t0 = Instant::now();
        let mut r = Registry::new(Duration::from_secs(8));
        r.put_catalog("p.d1", catalog("p", "d1", &["a"]));
        r.put_worker("p.i1", worker("p", "i1", "d1"), t0);
        // The beat naming d2 arrives before d2's record: still d1, not an empty pool.
        r.put_worker("p.i1", worker("p", "i1", "d2"), t0);
        assert!(matches!(r.snapshot(DEFAULT).lookup("a"), Lookup::Live(_)));
        r.put_catalog("p.d2", catalog("p", "d2", &["b"]));
        let snap = r.snapshot(DEFAULT);
        assert!(matches!(snap.lookup("b"), Lookup::Live(_)));
        assert_eq!(snap.tools().len(), 1);
    }
}
