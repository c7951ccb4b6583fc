//! `mcpbusctl conflicts`: names two pools register, and which pool keeps each (ADR 0015),
//! computed from the registry buckets with the gateways' own rule.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream::{self, kv};
use bus_schema::connect::NatsArgs;
use bus_schema::messages::{decode, CatalogRecord, WorkerRecord};
use bus_schema::topology::{CATALOG_KV, WORKERS_KV};
use futures::StreamExt;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// `text`: one line per conflict; `json`: the list as JSON.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// The longest worker TTL the gateways honour (their `--max-worker-ttl-ms`): records
    /// older than this are gone for them, so they are left out here too.
    #[arg(long, default_value_t = 8000)]
    max_worker_ttl_ms: u64,
}

pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let options = args
        .nats
        .into_options()?
        .with_inbox_prefix(bus_schema::subjects::ADMIN_INBOX_PREFIX);
    let nats = bus_schema::connect::connect(&options, "mcpbusctl").await?;
    let js = jetstream::new(nats);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ttl_cap = Duration::from_millis(args.max_worker_ttl_ms);
    let workers: Vec<WorkerRecord> = read_all(&js, WORKERS_KV.bucket)
        .await?
        .into_iter()
        .filter_map(|(entry, written)| {
            let record: WorkerRecord = decode(&entry).ok()?;
            let ttl = Duration::from_millis(record.ttl_ms).min(ttl_cap);
            (written + ttl >= now).then_some(record)
        })
        .collect();
    let catalogs: Vec<CatalogRecord> = read_all(&js, CATALOG_KV.bucket)
        .await?
        .into_iter()
        .filter_map(|(entry, _)| decode(&entry).ok())
        .collect();
    let conflicts = mcpbus_gateway::catalog::conflicts(&workers, &catalogs);
    if args.format == "json" {
        writeln!(out, "{}", serde_json::to_string_pretty(&conflicts)?)?;
    } else if conflicts.is_empty() {
        writeln!(out, "no conflicts")?;
    } else {
        for c in &conflicts {
            writeln!(
                out,
                "{} {}: kept by {}, refused to {}",
                c.kind.as_str(),
                c.name,
                c.kept_by,
                c.refused
            )?;
        }
    }
    Ok(())
}

/// Every current value of `bucket`, with when it was written (since the Unix epoch).
async fn read_all(js: &jetstream::Context, bucket: &str) -> Result<Vec<(Vec<u8>, Duration)>> {
    let store = js
        .get_key_value(bucket)
        .await
        .with_context(|| format!("opening bucket {bucket}"))?;
    let mut keys = store
        .keys()
        .await
        .with_context(|| format!("listing {bucket}"))?;
    let mut values = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key?;
        if let Some(entry) = store.entry(&key).await? {
            if entry.operation == kv::Operation::Put {
                let nanos = entry.created.unix_timestamp_nanos().max(0) as u64;
                values.push((entry.value.to_vec(), Duration::from_nanos(nanos)));
            }
        }
    }
    Ok(values)
}
