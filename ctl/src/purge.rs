//! `mcpbusctl purge-session ID`: ends a session as its client's `DELETE` would, done by the
//! operator: the record goes, its streams end on every gateway, its stored events are purged.
//! The gateways' own function does it (`mcpbus_gateway::session::end`), so both ways of
//! ending a session stay one.

use std::io::Write;

use anyhow::{bail, Context, Result};
use bus_schema::connect::NatsArgs;
use bus_schema::topology::{EVENTS_STREAM, SESSIONS_KV};
use mcpbus_gateway::session::{Removal, SessionId, SessionStore};
use serde_json::json;

use crate::cluster::Cluster;

#[derive(clap::Args)]
pub struct Args {
    /// The session id (`MCP-Session-Id`).
    session: String,
    #[command(flatten)]
    nats: NatsArgs,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let Some(id) = SessionId::parse(&args.session) else {
        bail!("{:?} is not a session id", args.session);
    };
    let cluster = Cluster::connect(args.nats).await?;
    let sessions = SessionStore::new(cluster.bucket(SESSIONS_KV).await?);
    let events = cluster.stream(EVENTS_STREAM).await?;
    // A purge of the key, not a KV delete: the operator may not write the bucket (ADR 0021).
    let ended =
        mcpbus_gateway::session::end(&sessions, &cluster.nats, &events, &id, Removal::Purge)
            .await
            .context("ending the session")?;
    if !ended {
        bail!("no session {} (it ended or expired)", id.as_str());
    }
    // The signal that ends its streams is a plain publish: out before we exit.
    cluster
        .nats
        .flush()
        .await
        .context("sending the end signal")?;
    if args.json {
        writeln!(out, "{}", json!({"session": id.as_str(), "ended": true}))?;
    } else {
        writeln!(
            out,
            "session {} ended: record removed, streams closed, events purged",
            id.as_str()
        )?;
    }
    Ok(())
}
