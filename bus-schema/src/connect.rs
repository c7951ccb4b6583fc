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
    connect_with(url, options(name)).await
}

/// Like [`connect`], for a connection whose subscriptions each buffer at most
/// `subscription_capacity` messages: a subscriber that does not keep up loses messages
/// (NATS "slow consumer") instead of growing without bound. Only for subscriptions whose
/// messages can be read again from a stream.
pub async fn connect_bounded(
    url: &str,
    name: &str,
    subscription_capacity: usize,
) -> Result<async_nats::Client, ConnectError> {
    let options = options(name).subscription_capacity(subscription_capacity);
    connect_with(url, options).await
}

fn options(name: &str) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
}

async fn connect_with(
    url: &str,
    options: async_nats::ConnectOptions,
) -> Result<async_nats::Client, ConnectError> {
    options.connect(url).await.map_err(|e| ConnectError {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}
