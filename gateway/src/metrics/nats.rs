//! The bus connection's state as metrics: up or down, and how often it came back.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::connection::State;
use tokio_util::sync::CancellationToken;

use super::METRICS;

/// How often the connection state is read (an atomic load; no traffic).
const EVERY: Duration = Duration::from_secs(1);

/// Follows `client`'s state until `stop`.
pub async fn watch_connection(client: async_nats::Client, stop: CancellationToken) {
    let mut counted = 1;
    loop {
        let up = matches!(client.connection_state(), State::Connected);
        METRICS.nats_connected.set(i64::from(up));
        // `connects` counts the first connection too.
        let connects = client.statistics().connects.load(Ordering::Relaxed).max(1);
        if connects > counted {
            METRICS.nats_reconnects.inc_by(connects - counted);
            counted = connects;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
