//! `mcpbusctl announce LEVEL TEXT`: a server-wide `notifications/message` from the operator
//! (ADR 0023), stored once in the broadcast stream. Every gateway delivers it to each
//! session-lane standalone stream whose log level lets it through, and replays it to a
//! stream that resumes past it.

use std::io::Write;

use anyhow::{Context, Result};
use bus_schema::connect::NatsArgs;
use bus_schema::mcp::LogLevel;
use bus_schema::messages::{encode, BroadcastEvent, BroadcastKind, ANNOUNCEMENT_MAX_BYTES};
use bus_schema::{headers, subjects, PROTOCOL_VERSION};
use serde_json::Value;

use crate::cluster::Cluster;

/// The logger an operator's messages show.
pub const OPERATOR_LOGGER: &str = "mcpbus";

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// debug, info, notice, warning, error, critical, alert or emergency.
    level: LogLevel,
    /// The message; with `--json`, a JSON value sent as the notification's `data`.
    text: String,
    /// TEXT is JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let data = if args.json {
        serde_json::from_str(&args.text).context("TEXT is not JSON (--json)")?
    } else {
        Value::String(args.text)
    };
    let body = encode(&BroadcastEvent {
        protocol: PROTOCOL_VERSION,
        kind: BroadcastKind::Message {
            level: args.level,
            logger: OPERATOR_LOGGER.into(),
            data,
        },
    });
    if body.len() > ANNOUNCEMENT_MAX_BYTES {
        anyhow::bail!(
            "the message is {} bytes; the limit is {}",
            body.len(),
            ANNOUNCEMENT_MAX_BYTES
        );
    }
    let cluster = Cluster::connect(args.nats).await?;
    let mut hdrs = async_nats::HeaderMap::new();
    let id = format!("announce:operator:{}", uuid::Uuid::new_v4().simple());
    hdrs.insert(headers::MSG_ID, id.as_str());
    let ack = cluster
        .js
        .publish_with_headers(
            subjects::broadcast(BroadcastKind::MESSAGE_TOKEN),
            hdrs,
            body,
        )
        .await
        .context("cannot publish the message")?
        .await
        .context("the broadcast stream did not store the message")?;
    writeln!(out, "announced (broadcast sequence {})", ack.sequence)?;
    Ok(())
}
