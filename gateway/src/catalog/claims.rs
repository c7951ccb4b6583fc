//! Who serves a name that several pools register: the pool that registered first keeps it
//! for as long as it serves; the others are refused that name (ADR 0015).
//!
//! "First" must be the same on every gateway, including one that starts later and reads
//! only the current KV values, so it comes from the records themselves: each pool's earliest
//! `registered_ms` among its live instances, then the pool name. Pure functions, no I/O and
//! no clock: the registry (`registry.rs`) applies the rule to what a gateway sees, and
//! [`conflicts`] applies it to the buckets' contents for tools such as `mcpbusctl conflicts`.

use std::collections::{BTreeMap, HashMap, HashSet};

use bus_schema::messages::{CatalogRecord, WorkerRecord};
use bus_schema::names::PoolName;
use bus_schema::subjects;
use serde::Serialize;

use super::snapshot::ListKind;

/// The four namespaces a pool registers names in. A tool and a prompt may share a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameKind {
    Tool,
    Prompt,
    /// A resource's exact `uri`.
    Resource,
    /// A resource template's `uriTemplate`.
    ResourceTemplate,
}

impl NameKind {
    pub const ALL: [NameKind; 4] = [
        NameKind::Tool,
        NameKind::Prompt,
        NameKind::Resource,
        NameKind::ResourceTemplate,
    ];

    /// The kind's name in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            NameKind::Tool => "tool",
            NameKind::Prompt => "prompt",
            NameKind::Resource => "resource",
            NameKind::ResourceTemplate => "resource_template",
        }
    }

    /// The list other than tools this kind's names are listed in.
    pub fn list(self) -> Option<ListKind> {
        match self {
            NameKind::Tool => None,
            NameKind::Prompt => Some(ListKind::Prompts),
            NameKind::Resource => Some(ListKind::Resources),
            NameKind::ResourceTemplate => Some(ListKind::Templates),
        }
    }

    /// The kind of the names of `list`.
    pub fn of_list(list: ListKind) -> Self {
        match list {
            ListKind::Prompts => NameKind::Prompt,
            ListKind::Resources => NameKind::Resource,
            ListKind::Templates => NameKind::ResourceTemplate,
        }
    }
}

/// A pool as the rule sees it: when it registered and what it serves.
#[derive(Debug, Clone)]
pub struct PoolClaim<'a> {
    pub pool: &'a PoolName,
    /// The earliest `registered_ms` among the pool's live instances. `None` (workers from
    /// before the field) comes after every stated time, so an old worker never takes a name
    /// from one that states its time.
    pub registered_ms: Option<u64>,
    /// The catalogue the pool serves.
    pub catalog: &'a CatalogRecord,
}

impl PoolClaim<'_> {
    /// Earlier claims first: registration time, then pool name (pool names are unique, so
    /// the order is total and every gateway agrees on it).
    fn order(&self) -> (u64, &PoolName) {
        (self.registered_ms.unwrap_or(u64::MAX), self.pool)
    }
}

/// A name a pool registered but does not get, because another pool serves it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Conflict {
    pub kind: NameKind,
    /// The tool or prompt name, resource URI or URI template.
    pub name: String,
    /// The pool that registered it first and serves it.
    pub kept_by: PoolName,
    /// The pool that registered it too and is refused it.
    pub refused: PoolName,
}

/// Which pool serves each contested name. Names only one pool registers are not recorded:
/// their pool keeps them.
#[derive(Debug, Default, Clone)]
pub struct Claims {
    keepers: HashMap<(NameKind, String), PoolName>,
    /// Sorted by kind, name and refused pool.
    conflicts: Vec<Conflict>,
}

impl Claims {
    /// Whether `pool` serves the name `name` of `kind`.
    pub fn keeps(&self, kind: NameKind, name: &str, pool: &PoolName) -> bool {
        // No allocation for the common, uncontested name.
        if self.keepers.is_empty() {
            return true;
        }
        match self.keepers.get(&(kind, name.to_owned())) {
            Some(keeper) => keeper == pool,
            None => true,
        }
    }

    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    pub fn into_conflicts(self) -> Vec<Conflict> {
        self.conflicts
    }
}

/// The names a catalogue registers, by kind, each once (a pool listing a name twice is not
/// in conflict with itself). Names must be non-empty strings; anything else is not listed.
pub fn names(catalog: &CatalogRecord) -> impl Iterator<Item = (NameKind, &str)> {
    let tools = catalog
        .tools
        .iter()
        .filter_map(|t| t.name())
        .map(|n| (NameKind::Tool, n));
    let items = [
        (NameKind::Prompt, &catalog.prompts),
        (NameKind::Resource, &catalog.resources),
        (NameKind::ResourceTemplate, &catalog.resource_templates),
    ]
    .into_iter()
    .flat_map(|(kind, list)| {
        let (field, _) = kind.list().expect("not a tool").fields();
        list.iter()
            .filter_map(move |i| i.get(field).and_then(|v| v.as_str()))
            .map(move |n| (kind, n))
    });
    let mut seen = HashSet::new();
    tools
        .chain(items)
        .filter(|(_, n)| !n.is_empty())
        .filter(move |named| seen.insert(*named))
}

/// Gives every name to the first pool (in [`PoolClaim`] order) that registers it, and lists
/// the others as conflicts.
pub fn resolve(pools: &[PoolClaim<'_>]) -> Claims {
    let mut ordered: Vec<&PoolClaim<'_>> = pools.iter().collect();
    ordered.sort_by(|a, b| a.order().cmp(&b.order()));
    let mut first: HashMap<(NameKind, &str), &PoolName> = HashMap::new();
    let mut claims = Claims::default();
    for claim in ordered {
        for (kind, name) in names(claim.catalog) {
            match first.get(&(kind, name)) {
                None => {
                    first.insert((kind, name), claim.pool);
                }
                Some(&keeper) if keeper != claim.pool => {
                    claims
                        .keepers
                        .insert((kind, name.to_owned()), keeper.clone());
                    claims.conflicts.push(Conflict {
                        kind,
                        name: name.to_owned(),
                        kept_by: keeper.clone(),
                        refused: claim.pool.clone(),
                    });
                }
                Some(_) => {}
            }
        }
    }
    claims.conflicts.sort();
    claims
}

/// The conflicts among the pools registered in the KV buckets, computed as every gateway
/// computes them: `workers` are the values of `mcpbus-workers` (the live instances: leave out
/// records older than their `ttl_ms`, which a gateway would have expired), `catalogs` those of
/// `mcpbus-catalog`. A pool whose instances name different catalogues (a rolling upgrade)
/// counts the names of all of them; a gateway uses its newest instance's.
pub fn conflicts(workers: &[WorkerRecord], catalogs: &[CatalogRecord]) -> Vec<Conflict> {
    let by_key: HashMap<String, &CatalogRecord> = catalogs
        .iter()
        .map(|c| (subjects::catalog_key(&c.pool, &c.digest), c))
        .collect();
    // Per pool: the earliest time its instances state, and the catalogues they name.
    let mut pools: BTreeMap<&PoolName, (Option<u64>, Vec<&CatalogRecord>)> = BTreeMap::new();
    for w in workers {
        let (since, served) = pools.entry(&w.pool).or_default();
        *since = earliest(*since, w.registered_ms);
        if let Some(cat) = by_key.get(&subjects::catalog_key(&w.pool, &w.catalog_digest)) {
            if !served.iter().any(|c| c.digest == cat.digest) {
                served.push(cat);
            }
        }
    }
    let claims: Vec<PoolClaim<'_>> = pools
        .iter()
        .flat_map(|(pool, (since, served))| {
            served.iter().map(move |catalog| PoolClaim {
                pool,
                registered_ms: *since,
                catalog,
            })
        })
        .collect();
    resolve(&claims).into_conflicts()
}

/// The earlier of two stated times; a stated time is earlier than none.
pub fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus_schema::messages::ToolEntry;
    use bus_schema::names::InstanceId;
    use serde_json::{json, Map, Value};

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn catalog(pool: &str, tools: &[&str]) -> CatalogRecord {
        CatalogRecord {
            protocol: 1,
            pool: PoolName::new(pool).unwrap(),
            digest: format!("d-{pool}"),
            tools: tools
                .iter()
                .map(|n| ToolEntry {
                    tool: object(json!({"name": n, "inputSchema": {"type": "object"}})),
                    timeout_ms: None,
                })
                .collect(),
            resources: Vec::new(),
            resource_templates: Vec::new(),
            prompts: Vec::new(),
        }
    }

    fn worker(pool: &str, instance: &str, registered_ms: Option<u64>) -> WorkerRecord {
        WorkerRecord {
            protocol: 1,
            pool: PoolName::new(pool).unwrap(),
            instance: InstanceId::new(instance).unwrap(),
            catalog_digest: format!("d-{pool}"),
            heartbeat_ms: 2000,
            ttl_ms: 6000,
            max_in_flight: 1,
            sdk: String::new(),
            registered_ms,
            alive_subscription: false,
        }
    }

    fn pool(name: &str) -> PoolName {
        PoolName::new(name).unwrap()
    }

    fn conflict(kind: NameKind, name: &str, kept_by: &str, refused: &str) -> Conflict {
        Conflict {
            kind,
            name: name.into(),
            kept_by: pool(kept_by),
            refused: pool(refused),
        }
    }

    #[test]
    fn the_pool_registered_first_keeps_the_name_whatever_its_name() {
        let (demo, aaa) = (catalog("demo", &["echo", "add"]), catalog("aaa", &["echo"]));
        let claims = resolve(&[
            PoolClaim {
                pool: &aaa.pool,
                registered_ms: Some(2_000),
                catalog: &aaa,
            },
            PoolClaim {
                pool: &demo.pool,
                registered_ms: Some(1_000),
                catalog: &demo,
            },
        ]);
        assert!(claims.keeps(NameKind::Tool, "echo", &pool("demo")));
        assert!(!claims.keeps(NameKind::Tool, "echo", &pool("aaa")));
        assert!(claims.keeps(NameKind::Tool, "add", &pool("demo")));
        assert_eq!(
            claims.conflicts(),
            [conflict(NameKind::Tool, "echo", "demo", "aaa")]
        );
    }

    #[test]
    fn equal_times_fall_back_to_the_pool_name_and_unstated_times_come_last() {
        let (b, a, old) = (
            catalog("b", &["t"]),
            catalog("a", &["t"]),
            catalog("0ld", &["t"]),
        );
        fn claim(c: &CatalogRecord, registered_ms: Option<u64>) -> PoolClaim<'_> {
            PoolClaim {
                pool: &c.pool,
                registered_ms,
                catalog: c,
            }
        }
        let claims = resolve(&[claim(&b, Some(5)), claim(&old, None), claim(&a, Some(5))]);
        assert_eq!(
            claims.conflicts(),
            [
                conflict(NameKind::Tool, "t", "a", "0ld"),
                conflict(NameKind::Tool, "t", "a", "b"),
            ]
        );
    }

    #[test]
    fn when_the_keeper_leaves_the_next_pool_gets_the_name() {
        let (first, second, third) = (
            catalog("first", &["echo"]),
            catalog("second", &["echo"]),
            catalog("third", &["echo"]),
        );
        let all = [
            worker("first", "f1", Some(1)),
            worker("second", "s1", Some(2)),
            worker("third", "t1", Some(3)),
        ];
        let cats = [first, second, third];
        assert_eq!(
            conflicts(&all, &cats),
            [
                conflict(NameKind::Tool, "echo", "first", "second"),
                conflict(NameKind::Tool, "echo", "first", "third"),
            ]
        );
        assert_eq!(
            conflicts(&all[1..], &cats),
            [conflict(NameKind::Tool, "echo", "second", "third")]
        );
        assert!(conflicts(&all[2..], &cats).is_empty());
    }

    #[test]
    fn a_pool_dates_from_its_earliest_live_instance() {
        let cats = [catalog("a", &["t"]), catalog("b", &["t"])];
        // b's first replica predates a; its newer replica does not make it younger.
        let workers = [
            worker("a", "a1", Some(10)),
            worker("b", "b2", Some(20)),
            worker("b", "b1", Some(5)),
        ];
        assert_eq!(
            conflicts(&workers, &cats),
            [conflict(NameKind::Tool, "t", "b", "a")]
        );
    }

    #[test]
    fn prompts_resources_and_templates_are_claimed_alike_each_in_its_own_namespace() {
        let mut first = catalog("first", &["shared"]);
        first.prompts = vec![object(json!({"name": "greet"}))];
        first.resources = vec![object(json!({"uri": "file:///a", "name": "a"}))];
        first.resource_templates = vec![object(json!({"uriTemplate": "db://{id}"}))];
        let mut late = catalog("a-late", &[]);
        late.prompts = vec![
            object(json!({"name": "greet"})),
            object(json!({"name": "shared"})),
        ];
        late.resources = vec![object(json!({"uri": "file:///a", "name": "mine"}))];
        late.resource_templates = vec![object(json!({"uriTemplate": "db://{id}"}))];
        let workers = [
            worker("first", "f", Some(1)),
            worker("a-late", "l", Some(2)),
        ];
        assert_eq!(
            conflicts(&workers, &[first, late]),
            [
                conflict(NameKind::Prompt, "greet", "first", "a-late"),
                conflict(NameKind::Resource, "file:///a", "first", "a-late"),
                conflict(NameKind::ResourceTemplate, "db://{id}", "first", "a-late"),
            ],
            "a prompt named like a tool is no conflict"
        );
    }

    #[test]
    fn replicas_and_repeated_names_are_no_conflict() {
        let cats = [catalog("p", &["t", "t"])];
        let workers = [worker("p", "i1", Some(1)), worker("p", "i2", Some(2))];
        assert!(conflicts(&workers, &cats).is_empty());
    }
}
