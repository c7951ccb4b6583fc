//! `mcpbusctl status`, `pools`, `tools`: the cluster as the bus holds it. Gateways from
//! `mcpbus-gateways`, pools and their replicas from `mcpbus-workers`, tools from the
//! catalogues with the gateways' own rule (`catalog::Registry`, so a contested name is listed
//! under the pool that keeps it), queue lag from each pool's consumer on `MCPBUS_CALLS`,
//! and every stream's and bucket's bytes against its limit.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;
use bus_schema::connect::NatsArgs;
use bus_schema::messages::{decode, GatewayRecord};
use bus_schema::names::PoolName;
use bus_schema::subjects;
use bus_schema::topology::{self, CALLS_STREAM, GATEWAYS_KV};
use futures::TryStreamExt;
use mcpbus_gateway::catalog::{Conflict, Registry as Catalogue};
use serde::Serialize;
use serde_json::Value;

use crate::cluster::{now_ms, Cluster};
use crate::conflicts::{read_registry, Registry, TtlArgs};
use crate::table;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// One JSON document instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ttl: TtlArgs,
}

/// Everything `status` shows.
#[derive(Serialize)]
pub struct Status {
    pub gateways: Vec<GatewayView>,
    pub pools: Vec<PoolView>,
    pub conflicts: Vec<Conflict>,
    pub storage: Vec<StoreView>,
}

/// One gateway node, from its record.
#[derive(Serialize)]
pub struct GatewayView {
    pub instance: String,
    pub version: String,
    pub address: String,
    pub uptime_secs: u64,
    /// Seconds since its last beat.
    pub last_seen_secs: u64,
    /// False when it missed three beats: it stopped without deleting its record, which the
    /// bucket's age limit removes soon.
    pub live: bool,
    pub open_streams: BTreeMap<String, u64>,
}

/// One pool: its live replicas, the tools gateways route to it, its queue.
#[derive(Serialize)]
pub struct PoolView {
    pub pool: String,
    pub replicas: usize,
    pub instances: Vec<InstanceView>,
    pub tools: Vec<String>,
    /// `None` when the pool has no consumer (no worker of it ever started).
    pub queue: Option<QueueView>,
}

#[derive(Serialize)]
pub struct InstanceView {
    pub instance: String,
    pub sdk: String,
    pub max_in_flight: u32,
    pub last_seen_ms: u64,
}

/// A pool consumer's counters.
#[derive(Serialize)]
pub struct QueueView {
    /// Calls waiting for a worker (`num_pending`): the lag.
    pub pending: u64,
    /// Calls delivered to a worker and not yet acknowledged (`num_ack_pending`): running.
    pub ack_pending: u64,
    /// Delivered calls that were delivered again (a worker died or NAKed).
    pub redelivered: u64,
}

/// One stream or bucket's use of its limits (ADR 0007).
#[derive(Serialize)]
pub struct StoreView {
    pub name: String,
    pub bytes: u64,
    /// `-1`: unlimited.
    pub max_bytes: i64,
    pub messages: u64,
    pub exists: bool,
}

/// One tool as gateways list it.
#[derive(Serialize)]
pub struct ToolView {
    pub name: String,
    pub pool: String,
    pub description: Option<String>,
}

pub async fn run_status(args: Args, out: &mut impl Write) -> Result<()> {
    let cluster = Cluster::connect(args.nats).await?;
    let registry = read_registry(&cluster, args.ttl).await?;
    let status = Status {
        gateways: gateways(&cluster).await?,
        pools: pools(&cluster, &registry).await?,
        conflicts: mcpbus_gateway::catalog::conflicts(
            &registry.worker_records(),
            &registry.catalogs,
        ),
        storage: storage(&cluster).await?,
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
        return Ok(());
    }
    writeln!(out, "GATEWAYS")?;
    write!(out, "{}", gateways_table(&status.gateways))?;
    writeln!(out, "\nPOOLS")?;
    write!(out, "{}", pools_table(&status.pools))?;
    writeln!(out, "\nNAME CONFLICTS")?;
    if status.conflicts.is_empty() {
        writeln!(out, "none")?;
    }
    for c in &status.conflicts {
        writeln!(out, "{}", crate::conflicts::line(c))?;
    }
    writeln!(out, "\nSTORAGE")?;
    write!(out, "{}", storage_table(&status.storage))?;
    Ok(())
}

pub async fn run_pools(args: Args, out: &mut impl Write) -> Result<()> {
    let cluster = Cluster::connect(args.nats).await?;
    let registry = read_registry(&cluster, args.ttl).await?;
    let pools = pools(&cluster, &registry).await?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&pools)?)?;
    } else {
        write!(out, "{}", pools_table(&pools))?;
    }
    Ok(())
}

pub async fn run_tools(args: Args, out: &mut impl Write) -> Result<()> {
    let cluster = Cluster::connect(args.nats).await?;
    let registry = read_registry(&cluster, args.ttl).await?;
    let tools = tools(&registry);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&tools)?)?;
    } else {
        let rows: Vec<Vec<String>> = tools
            .iter()
            .map(|t| {
                let description = t.description.as_deref().unwrap_or_default();
                vec![
                    t.name.clone(),
                    t.pool.clone(),
                    table::short(description, 60),
                ]
            })
            .collect();
        write!(
            out,
            "{}",
            table::render(&["TOOL", "POOL", "DESCRIPTION"], &rows)
        )?;
    }
    Ok(())
}

/// Every gateway record, oldest first.
pub async fn gateways(cluster: &Cluster) -> Result<Vec<GatewayView>> {
    let now = now_ms();
    let mut views: Vec<GatewayView> = cluster
        .read_bucket(GATEWAYS_KV)
        .await?
        .into_iter()
        .filter_map(|entry| {
            let record: GatewayRecord = decode(&entry.value).ok()?;
            let last_seen = entry.age();
            Some(GatewayView {
                instance: record.instance.to_string(),
                version: record.version,
                address: record.address,
                uptime_secs: now.saturating_sub(record.started_ms) / 1000,
                last_seen_secs: last_seen.as_secs(),
                live: last_seen <= Duration::from_millis(3 * record.heartbeat_ms.max(1)),
                open_streams: record.open_streams,
            })
        })
        .collect();
    views.sort_by(|a, b| {
        b.uptime_secs
            .cmp(&a.uptime_secs)
            .then_with(|| a.instance.cmp(&b.instance))
    });
    Ok(views)
}

/// The tools gateways list, by name, each with the pool that serves it.
pub fn tools(registry: &Registry) -> Vec<ToolView> {
    let mut catalogue = Catalogue::new(Duration::from_secs(3600));
    for c in &registry.catalogs {
        catalogue.put_catalog(&subjects::catalog_key(&c.pool, &c.digest), c.clone());
    }
    let seen = Instant::now();
    for (w, _) in &registry.workers {
        let key = subjects::worker_key(&w.pool, &w.instance);
        catalogue.put_worker(&key, w.clone(), seen);
    }
    catalogue
        .snapshot(Duration::from_secs(300))
        .tools()
        .iter()
        .map(|t| ToolView {
            name: t.name().to_owned(),
            pool: t.pool.to_string(),
            description: t
                .tool
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .collect()
}

/// Every pool with a live instance or a consumer, by name.
pub async fn pools(cluster: &Cluster, registry: &Registry) -> Result<Vec<PoolView>> {
    let queues = queues(cluster).await?;
    let tools = tools(registry);
    let mut names: BTreeSet<String> = queues.keys().cloned().collect();
    names.extend(registry.workers.iter().map(|(w, _)| w.pool.to_string()));
    let mut queues = queues;
    Ok(names
        .into_iter()
        .map(|pool| {
            let instances: Vec<InstanceView> = registry
                .workers
                .iter()
                .filter(|(w, _)| w.pool.as_str() == pool)
                .map(|(w, age)| InstanceView {
                    instance: w.instance.to_string(),
                    sdk: w.sdk.clone(),
                    max_in_flight: w.max_in_flight,
                    last_seen_ms: age.as_millis() as u64,
                })
                .collect();
            PoolView {
                replicas: instances.len(),
                instances,
                tools: tools
                    .iter()
                    .filter(|t| t.pool == pool)
                    .map(|t| t.name.clone())
                    .collect(),
                queue: queues.remove(&pool),
                pool,
            }
        })
        .collect())
}

/// Each pool consumer's counters, by pool: the consumers of the calls stream whose filter
/// is a pool's calls subject and whose name is that pool's consumer name.
async fn queues(cluster: &Cluster) -> Result<BTreeMap<String, QueueView>> {
    let calls = cluster.stream(CALLS_STREAM).await?;
    let infos: Vec<_> = calls.consumers().try_collect().await?;
    let calls_prefix = subjects::CALLS_WILDCARD.trim_end_matches('>');
    Ok(infos
        .into_iter()
        .filter_map(|info| {
            let pool = info.config.filter_subject.strip_prefix(calls_prefix)?;
            let pool = PoolName::new(pool).ok()?;
            (topology::pool_consumer_name(&pool) == info.name).then(|| {
                let queue = QueueView {
                    pending: info.num_pending,
                    ack_pending: info.num_ack_pending as u64,
                    redelivered: info.num_redelivered as u64,
                };
                (pool.to_string(), queue)
            })
        })
        .collect())
}

/// Every stream and bucket mcpbus declares, with its bytes against its limit.
pub async fn storage(cluster: &Cluster) -> Result<Vec<StoreView>> {
    let mut views = Vec::new();
    for name in topology::stream_names() {
        let view = match cluster.stream_info(&name).await? {
            Some(info) => StoreView {
                bytes: info.state.bytes,
                max_bytes: info.config.max_bytes,
                messages: info.state.messages,
                exists: true,
                name,
            },
            None => StoreView {
                name,
                bytes: 0,
                max_bytes: 0,
                messages: 0,
                exists: false,
            },
        };
        views.push(view);
    }
    Ok(views)
}

fn gateways_table(gateways: &[GatewayView]) -> String {
    if gateways.is_empty() {
        return "none\n".to_owned();
    }
    let rows: Vec<Vec<String>> = gateways
        .iter()
        .map(|g| {
            let streams = |kind: &str| g.open_streams.get(kind).copied().unwrap_or(0).to_string();
            vec![
                g.instance.clone(),
                g.version.clone(),
                g.address.clone(),
                table::duration(Duration::from_secs(g.uptime_secs)),
                if g.live { "live" } else { "silent" }.to_owned(),
                streams("request"),
                streams("standalone"),
                streams("listen"),
            ]
        })
        .collect();
    table::render(
        &[
            "GATEWAY",
            "VERSION",
            "ADDRESS",
            "UPTIME",
            "STATE",
            "REQUEST",
            "STANDALONE",
            "LISTEN",
        ],
        &rows,
    )
}

fn pools_table(pools: &[PoolView]) -> String {
    if pools.is_empty() {
        return "none\n".to_owned();
    }
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|p| {
            let (queued, running) = p.queue.as_ref().map_or(("-".into(), "-".into()), |q| {
                (q.pending.to_string(), q.ack_pending.to_string())
            });
            let instances: Vec<&str> = p.instances.iter().map(|i| i.instance.as_str()).collect();
            vec![
                p.pool.clone(),
                p.replicas.to_string(),
                p.tools.len().to_string(),
                queued,
                running,
                instances.join(","),
            ]
        })
        .collect();
    table::render(
        &[
            "POOL",
            "REPLICAS",
            "TOOLS",
            "QUEUED",
            "RUNNING",
            "INSTANCES",
        ],
        &rows,
    )
}

fn storage_table(stores: &[StoreView]) -> String {
    let rows: Vec<Vec<String>> = stores
        .iter()
        .map(|s| {
            if !s.exists {
                return vec![
                    s.name.clone(),
                    "missing".into(),
                    String::new(),
                    String::new(),
                ];
            }
            let used = if s.max_bytes > 0 {
                format!("{:.1}%", s.bytes as f64 * 100.0 / s.max_bytes as f64)
            } else {
                "-".into()
            };
            vec![
                s.name.clone(),
                format!(
                    "{} of {}",
                    table::bytes(s.bytes as i64),
                    table::bytes(s.max_bytes)
                ),
                used,
                s.messages.to_string(),
            ]
        })
        .collect();
    table::render(&["STORE", "BYTES", "USED", "MESSAGES"], &rows)
}
