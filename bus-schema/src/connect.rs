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
/// take gateways or workers down. `inbox_prefix` is the role's own
/// ([`crate::subjects::GATEWAY_INBOX_PREFIX`], [`crate::subjects::worker_inbox_prefix`]):
/// under NATS permissions a role may only subscribe to its own inboxes (ADR 0013).
pub async fn connect(
    url: &str,
    name: &str,
    inbox_prefix: &str,
) -> Result<async_nats::Client, ConnectError> {
    connect_with(url, options(name, inbox_prefix)).await
}

/// Like [`connect`], for a connection whose subscriptions each buffer at most
/// `subscription_capacity` messages: a subscriber that does not keep up loses messages
/// (NATS "slow consumer") instead of growing without bound. Only for subscriptions whose
/// messages can be read again from a stream.
pub async fn connect_bounded(
    url: &str,
    name: &str,
    inbox_prefix: &str,
    subscription_capacity: usize,
) -> Result<async_nats::Client, ConnectError> {
    let options = options(name, inbox_prefix).subscription_capacity(subscription_capacity);
    connect_with(url, options).await
}

fn options(name: &str, inbox_prefix: &str) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .name(name)
        .custom_inbox_prefix(inbox_prefix)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
}

async fn connect_with(
    url: &str,
    options: async_nats::ConnectOptions,
) -> Result<async_nats::Client, ConnectError> {
    let fail = |reason: String| ConnectError {
        url: redacted(url),
        reason,
    };
    let addr: async_nats::ServerAddr = url.parse().map_err(|e| fail(format!("{e}")))?;
    // async-nats reads no credentials from the URL itself: pass them on explicitly.
    let options = match (addr.username(), addr.password()) {
        (Some(user), Some(pass)) => options.user_and_password(user.to_owned(), pass.to_owned()),
        _ => options,
    };
    options.connect(addr).await.map_err(|e| fail(e.to_string()))
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    match url
        .split_once("://")
        .map(|(scheme, rest)| (scheme, rest.rsplit_once('@')))
    {
        Some((scheme, Some((userinfo, host)))) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::redacted("nats://gw:s3cret@127.0.0.1:4222"),
            "nats://gw:***@127.0.0.1:4222"
        );
        assert_eq!(
            super::redacted("nats://127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
    }
}
