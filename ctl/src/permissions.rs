//! `mcpbusctl nats-permissions`: a role's permissions, for a nats-server configuration.

use std::io::Write;

use anyhow::{bail, Result};
use bus_schema::names::PoolName;
use bus_schema::permissions::{Permissions, Role};

#[derive(clap::Args)]
pub struct Args {
    /// The role: `gateway`, `operator` (what `mcpbusctl` needs, ADR 0021), or `worker`
    /// (with `--pool`).
    #[arg(long, value_parser = ["gateway", "operator", "worker"])]
    role: String,
    /// The worker pool (with `--role worker`).
    #[arg(long)]
    pool: Option<String>,
    /// `conf`: a nats-server configuration block; `json`: the same lists as JSON.
    #[arg(long, default_value = "conf", value_parser = ["conf", "json"])]
    format: String,
}

pub fn run(args: &Args, out: &mut impl Write) -> Result<()> {
    let role = match (args.role.as_str(), &args.pool) {
        ("gateway", None) => Role::Gateway,
        ("operator", None) => Role::Operator,
        ("gateway" | "operator", Some(_)) => bail!("--pool is only for --role worker"),
        ("worker", Some(pool)) => {
            Role::Worker(PoolName::new(pool.as_str()).map_err(|e| anyhow::anyhow!("--pool: {e}"))?)
        }
        _ => bail!("--role worker needs --pool NAME"),
    };
    let permissions = Permissions::of(&role);
    match args.format.as_str() {
        "json" => {
            let value = serde_json::json!({
                "publish": {"allow": permissions.publish},
                "subscribe": {"allow": permissions.subscribe},
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
        _ => writeln!(out, "{}", permissions.to_server_config())?,
    }
    Ok(())
}
