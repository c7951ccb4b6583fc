//! `mcpbusctl drain POOL/INSTANCE`: asks one worker instance to drain and leave over the bus
//! (PROTOCOL.md §4.3, the same as SIGTERM: stop pulling, finish running calls, delete its
//! record, exit 0), then waits until its record is gone.
//!
//! The request is one core-NATS message on the instance's drain subject; the record leaving
//! the workers bucket is the answer, so the command knows the instance has really gone (or
//! says that it has not, when the wait ends).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use async_nats::jetstream::kv;
use bus_schema::connect::NatsArgs;
use bus_schema::messages::{decode, WorkerRecord};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::subjects;
use bus_schema::topology::WORKERS_KV;
use serde_json::json;

use crate::cluster::Cluster;

/// How often the record is looked at while waiting.
const POLL: Duration = Duration::from_millis(200);

#[derive(clap::Args)]
pub struct Args {
    /// The instance, as `mcpbusctl pools` lists it: `POOL/INSTANCE`.
    target: String,
    #[command(flatten)]
    nats: NatsArgs,
    /// How long to wait for the instance to leave. Longer than the worker's own drain
    /// timeout (the SDKs: 30 s), which bounds how long its running calls may take.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// Whether the instance's record says it is still there.
enum Presence {
    Live,
    Gone,
    /// Its record outlived its `ttl_ms`: it stopped without deleting it (crashed).
    Expired,
}

pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let (pool, instance) = parse_target(&args.target)?;
    let cluster = Cluster::connect(args.nats).await?;
    let workers = cluster.bucket(WORKERS_KV).await?;
    let key = subjects::worker_key(&pool, &instance);
    if !matches!(presence(&workers, &key).await?, Presence::Live) {
        bail!("no live instance {pool}/{instance} (see `mcpbusctl pools`)");
    }
    cluster
        .nats
        .publish(subjects::drain(&pool, &instance), "".into())
        .await
        .context("publishing the drain request")?;
    cluster
        .nats
        .flush()
        .await
        .context("sending the drain request")?;
    let started = Instant::now();
    let timeout = Duration::from_secs(args.timeout_secs);
    let how = loop {
        match presence(&workers, &key).await? {
            Presence::Gone => break "left",
            Presence::Expired => break "stopped without deregistering",
            Presence::Live if started.elapsed() >= timeout => bail!(
                "{pool}/{instance} did not leave within {}s: it may still be finishing its \
                 calls, or its SDK predates drain over the bus (then send it SIGTERM)",
                args.timeout_secs
            ),
            Presence::Live => tokio::time::sleep(POLL).await,
        }
    };
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        let result =
            json!({"pool": pool, "instance": instance, "left": true, "how": how, "secs": secs});
        writeln!(out, "{result}")?;
    } else {
        writeln!(out, "{pool}/{instance} drained and {how} after {secs:.1}s")?;
    }
    Ok(())
}

/// `POOL/INSTANCE`, each a valid name.
fn parse_target(target: &str) -> Result<(PoolName, InstanceId)> {
    let (pool, instance) = target
        .split_once('/')
        .ok_or_else(|| anyhow!("{target:?} is not POOL/INSTANCE"))?;
    let pool = PoolName::new(pool).map_err(|e| anyhow!("pool {pool:?}: {e}"))?;
    let instance = InstanceId::new(instance).map_err(|e| anyhow!("instance {instance:?}: {e}"))?;
    Ok((pool, instance))
}

async fn presence(workers: &kv::Store, key: &str) -> Result<Presence> {
    let entry = workers
        .entry(key)
        .await
        .with_context(|| format!("reading {key} in {}", WORKERS_KV.bucket))?;
    let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
        return Ok(Presence::Gone);
    };
    let Ok(record) = decode::<WorkerRecord>(&entry.value) else {
        return Ok(Presence::Gone);
    };
    let written = std::time::SystemTime::from(entry.created);
    let age = std::time::SystemTime::now()
        .duration_since(written)
        .unwrap_or_default();
    if age > Duration::from_millis(record.ttl_ms) {
        return Ok(Presence::Expired);
    }
    Ok(Presence::Live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_a_pool_and_an_instance() {
        let (pool, instance) = parse_target("demo/w1").unwrap();
        assert_eq!((pool.as_str(), instance.as_str()), ("demo", "w1"));
        for bad in ["demo", "demo/", "/w1", "de mo/w1", "demo/w.1"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
