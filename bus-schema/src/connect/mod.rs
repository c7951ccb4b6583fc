//! Connecting a process to the bus, the same way for gateways and workers: the settings
//! (seed servers, one way of authenticating, TLS) are given once as flags and environment
//! (`args.rs`, feature `clap`), checked into [`NatsOptions`] (`settings.rs`), and every
//! connection the process opens is made from those options here.
//!
//! No secret leaves this module in a message: servers are shown with their userinfo as
//! `***`, files by path, and errors from the client library are scrubbed of every secret the
//! options hold.

#[cfg(feature = "clap")]
mod args;
mod error;
mod options;
mod servers;
mod setting;
mod settings;
#[cfg(test)]
mod tests;

#[cfg(feature = "clap")]
pub use args::NatsArgs;
pub use error::{ConnectError, OptionsError};
pub use options::{NatsOptions, Secret, CONNECT_TIMEOUT, LEAVE_LOST_SERVER, PING_INTERVAL};
pub use servers::redact_url;
pub use setting::Setting;
pub use settings::NatsSettings;

/// The server a process connects to when told none: a local one.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// Connects once, failing fast with a readable error if the servers are unreachable or
/// refuse the credentials at start. After the first success the client reconnects forever
/// on its own: a NATS restart must not take gateways or workers down.
pub async fn connect(
    options: &NatsOptions,
    name: &str,
) -> Result<async_nats::Client, ConnectError> {
    connect_with(options, name, None).await
}

/// Like [`connect`], for a connection whose subscriptions each buffer at most
/// `subscription_capacity` messages: a subscriber that does not keep up loses messages
/// (NATS "slow consumer") instead of growing without bound. Only for subscriptions whose
/// messages can be read again from a stream.
pub async fn connect_bounded(
    options: &NatsOptions,
    name: &str,
    subscription_capacity: usize,
) -> Result<async_nats::Client, ConnectError> {
    connect_with(options, name, Some(subscription_capacity)).await
}

async fn connect_with(
    options: &NatsOptions,
    name: &str,
    subscription_capacity: Option<usize>,
) -> Result<async_nats::Client, ConnectError> {
    let failed = |reason: String| ConnectError {
        servers: options.servers_shown().to_owned(),
        reason: options.scrub(&reason),
    };
    // The binaries link rustls with both ring (async-nats) and aws-lc-rs (reqwest 0.13 in
    // rmcp), so rustls cannot pick a provider by itself and panics at the first TLS
    // handshake. Ring, as async-nats is built; an error only says one is installed already.
    let _ = async_nats::rustls::crypto::ring::default_provider().install_default();
    let mut connect = options.connect_options(name).map_err(failed)?;
    if let Some(capacity) = subscription_capacity {
        connect = connect.subscription_capacity(capacity);
    }
    connect
        .connect(options.servers.addrs.clone())
        .await
        .map_err(|e| match e.kind() {
            async_nats::ConnectErrorKind::AuthorizationViolation
            | async_nats::ConnectErrorKind::Authentication => {
                failed(format!("{}: {e}", options.refused()))
            }
            _ => failed(e.to_string()),
        })
}
