//! `mcpbusctl conflicts`: names two pools register, and which pool keeps each (ADR 0015),
//! computed from the registry buckets with the gateways' own rule. [`read_registry`] is the
//! registry as a gateway sees it, which `status`, `pools` and `tools` read too.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use bus_schema::connect::NatsArgs;
use bus_schema::messages::{decode, CatalogRecord, WorkerRecord};
use bus_schema::topology::{CATALOG_KV, WORKERS_KV};
use mcpbus_gateway::catalog::Conflict;

use crate::cluster::Cluster;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// `text`: one line per conflict; `json`: the list as JSON.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    #[command(flatten)]
    ttl: TtlArgs,
}

/// How long a worker record counts as live.
#[derive(clap::Args, Clone, Copy)]
pub struct TtlArgs {
    /// The longest worker TTL the gateways honour (their `--max-worker-ttl-ms`): records
    /// older than this are gone for them, so they are left out here too.
    #[arg(long, default_value_t = 8000)]
    pub max_worker_ttl_ms: u64,
}

/// The live worker instances (with how long ago each last beat) and every catalogue.
pub struct Registry {
    pub workers: Vec<(WorkerRecord, Duration)>,
    pub catalogs: Vec<CatalogRecord>,
}

impl Registry {
    pub fn worker_records(&self) -> Vec<WorkerRecord> {
        self.workers.iter().map(|(w, _)| w.clone()).collect()
    }
}

/// Reads both registry buckets, leaving out the worker records a gateway would have expired
/// (older than their `ttl_ms`, capped at `ttl.max_worker_ttl_ms`).
pub async fn read_registry(cluster: &Cluster, ttl: TtlArgs) -> Result<Registry> {
    let ttl_cap = Duration::from_millis(ttl.max_worker_ttl_ms);
    let mut workers: Vec<(WorkerRecord, Duration)> = cluster
        .read_bucket(WORKERS_KV)
        .await?
        .into_iter()
        .filter_map(|entry| {
            let record: WorkerRecord = decode(&entry.value).ok()?;
            let ttl = Duration::from_millis(record.ttl_ms).min(ttl_cap);
            let age = entry.age();
            (age <= ttl).then_some((record, age))
        })
        .collect();
    workers.sort_by(|(a, _), (b, _)| (&a.pool, &a.instance).cmp(&(&b.pool, &b.instance)));
    let catalogs = cluster
        .read_bucket(CATALOG_KV)
        .await?
        .into_iter()
        .filter_map(|entry| decode(&entry.value).ok())
        .collect();
    Ok(Registry { workers, catalogs })
}

pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let cluster = Cluster::connect(args.nats).await?;
    let registry = read_registry(&cluster, args.ttl).await?;
    let conflicts =
        mcpbus_gateway::catalog::conflicts(&registry.worker_records(), &registry.catalogs);
    if args.format == "json" {
        writeln!(out, "{}", serde_json::to_string_pretty(&conflicts)?)?;
    } else if conflicts.is_empty() {
        writeln!(out, "no conflicts")?;
    } else {
        for c in &conflicts {
            writeln!(out, "{}", line(c))?;
        }
    }
    Ok(())
}

/// One conflict, as people read it.
pub fn line(c: &Conflict) -> String {
    format!(
        "{} {}: kept by {}, refused to {}",
        c.kind.as_str(),
        c.name,
        c.kept_by,
        c.refused
    )
}
