//! Before the worker starts: the environment it gets (its login, never the kit's), and the
//! refusal to check a pool that other workers serve.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use async_nats::jetstream::kv;
use bus_schema::messages::{decode, WorkerRecord};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::subjects;
use futures::StreamExt;

use super::bus::Bus;
use super::launch::WorkerEnv;
use super::Args;

/// The worker's environment: where and as whom it connects, its pool and instance.
pub fn worker_env(args: &Args, pool: &PoolName, instance: &InstanceId) -> Result<WorkerEnv> {
    let url = match &args.worker_nats {
        Some(url) => url.clone(),
        None if args.nats.servers.contains('@') => bail!(
            "--nats carries credentials, which the worker must not get: give the worker's \
             own with --worker-nats (and --worker-user, --worker-password-file, --worker-creds)"
        ),
        None => args.nats.servers.clone(),
    };
    let mut env: WorkerEnv = vec![
        ("MCPBUS_NATS_URL", url),
        ("MCPBUS_POOL", pool.to_string()),
        ("MCPBUS_INSTANCE", instance.to_string()),
    ];
    if let Some(user) = &args.worker_user {
        env.push(("MCPBUS_NATS_USER", user.clone()));
    }
    if let Some(file) = &args.worker_password_file {
        let password = std::fs::read_to_string(file)
            .with_context(|| format!("reading --worker-password-file {}", file.display()))?;
        env.push((
            "MCPBUS_NATS_PASSWORD",
            password.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    if let Some(creds) = &args.worker_creds {
        env.push(("MCPBUS_NATS_CREDS", creds.display().to_string()));
    }
    Ok(env)
}

/// The kit needs the pool to itself: another live worker would take its calls.
pub async fn refuse_live_workers(bus: &Bus) -> Result<()> {
    let prefix = subjects::worker_keys_prefix(&bus.pool);
    let mut keys = bus
        .workers
        .keys()
        .await
        .context("listing the workers bucket")?;
    let mut live = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key?;
        if !key.starts_with(&prefix) {
            continue;
        }
        let Some(entry) = bus.workers.entry(&key).await? else {
            continue;
        };
        if entry.operation != kv::Operation::Put {
            continue;
        }
        let Ok(record) = decode::<WorkerRecord>(&entry.value) else {
            continue;
        };
        let written = SystemTime::UNIX_EPOCH
            + Duration::from_nanos(entry.created.unix_timestamp_nanos().max(0) as u64);
        let age = SystemTime::now()
            .duration_since(written)
            .unwrap_or_default();
        if age < Duration::from_millis(record.ttl_ms) {
            live.push(key);
        }
    }
    if !live.is_empty() {
        bail!(
            "pool {} has live workers ({}): the check needs the pool to itself",
            bus.pool,
            live.join(", ")
        );
    }
    Ok(())
}
