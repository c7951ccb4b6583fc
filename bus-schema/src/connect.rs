//! Connecting a process to the bus, the same way for gateways and workers.

use std::time::Duration;

/// Why the first connection failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url}: {reason}")]
pub struct ConnectError {
    pub url: String,
    pub reason: String,
}

/// Connects once, failing fast with a readable error if the server is unreachable at start.
/// After the first success the client reconnects forever on its own: a NATS restart must not
/// take gateways or workers down.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, ConnectError> {
    let options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None);
    options.connect(url).await.map_err(|e| ConnectError {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}
