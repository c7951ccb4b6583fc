//! The gateway's own record in KV `mcpbus-gateways` (ADR 0021), so that operators can list
//! the live gateways (`mcpbusctl status`): its version, address, uptime and open streams.
//!
//! Re-put every [`GATEWAY_HEARTBEAT`] and deleted on a graceful stop; a gateway that dies
//! leaves a record the bucket's age limit removes. Nothing routes by it, so a failed put is
//! only logged. This module reads the open-stream gauges of `metrics.rs` and writes nothing
//! but its own key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream::kv;
use bus_schema::messages::{encode, GatewayRecord};
use bus_schema::names::InstanceId;
use bus_schema::subjects;
use bus_schema::topology::GATEWAY_HEARTBEAT;
use tokio_util::sync::CancellationToken;

use crate::session::now_ms;

/// The kinds of open streams a record counts (the `kind` label of `mcpbus_open_streams`).
pub const STREAM_KINDS: [&str; 3] = ["request", "standalone", "listen"];

/// How long the final delete may take before the gateway stops anyway.
const DELETE_WITHIN: Duration = Duration::from_secs(2);

/// What this gateway says about itself.
pub struct Presence {
    bucket: kv::Store,
    instance: InstanceId,
    address: SocketAddr,
    started_ms: u64,
}

impl Presence {
    pub fn new(bucket: kv::Store, instance: InstanceId, address: SocketAddr) -> Self {
        Self {
            bucket,
            instance,
            address,
            started_ms: now_ms(),
        }
    }

    /// The record as of now.
    pub fn record(&self) -> GatewayRecord {
        GatewayRecord {
            protocol: bus_schema::PROTOCOL_VERSION,
            instance: self.instance.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            address: self.address.to_string(),
            started_ms: self.started_ms,
            heartbeat_ms: GATEWAY_HEARTBEAT.as_millis() as u64,
            open_streams: open_streams(),
        }
    }

    /// Puts the record every beat until `stop`, then deletes it.
    pub async fn keep_alive(self, stop: CancellationToken) {
        let key = subjects::gateway_key(&self.instance);
        loop {
            if let Err(e) = self.bucket.put(&key, encode(&self.record())).await {
                tracing::debug!(error = %e, "could not put the gateway record");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(GATEWAY_HEARTBEAT) => {}
            }
        }
        match tokio::time::timeout(DELETE_WITHIN, self.bucket.delete(&key)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "could not delete the gateway record"),
            Err(_) => tracing::debug!("deleting the gateway record timed out"),
        }
    }
}

/// This node's open SSE streams by kind, from the `mcpbus_open_streams` gauges.
fn open_streams() -> BTreeMap<String, u64> {
    let gauge = &crate::metrics::METRICS.open_streams;
    STREAM_KINDS
        .iter()
        .map(|kind| {
            let n = gauge.with_label_values(&[kind]).get();
            ((*kind).to_owned(), u64::try_from(n).unwrap_or(0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_streams_are_read_from_the_gauges() {
        let _stream = crate::metrics::OpenStream::new("listen");
        let counts = open_streams();
        assert_eq!(counts.len(), STREAM_KINDS.len());
        assert!(counts["listen"] >= 1);
    }
}
