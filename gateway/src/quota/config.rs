//! Quota settings, their defaults and their flags.

use std::time::Duration;

use ipnet::IpNet;

/// Every figure is per client (principal, or address with auth off) and per gateway node:
/// cluster-wide, a client may reach each one times the number of gateways (ADR 0012).
#[derive(Debug, Clone)]
pub struct QuotaConfig {
    /// Sustained requests per second. Default 100: well above what an interactive agent sends,
    /// a small share of what one node serves (docs/PERFORMANCE.md).
    pub requests_per_second: u32,
    /// Requests a client may send at once above the sustained rate. Default 200.
    pub request_burst: u32,
    /// New sessions per minute (and the burst). Default 120: a client reconnecting now and
    /// then needs a few; one creating thousands is filling the sessions bucket.
    pub sessions_per_minute: u32,
    /// New tasks (and calls that may become tasks) per minute (and the burst). Default 60:
    /// a task holds no call slot while it runs, so its rate is what bounds it.
    pub tasks_per_minute: u32,
    /// Calls (tool calls, reads, prompts) in flight. Default 8: half a worker's default
    /// `max_in_flight` (16), so one client cannot hold even a single-replica pool, while an
    /// agent still runs several tools at once (measured: `mcpbus-bench abuse`).
    pub calls_per_client: usize,
    /// Calls in flight per session. Default 8.
    pub calls_per_session: usize,
    /// Open `subscriptions/listen` streams. Default 16: a client needs one or two.
    pub listen_per_client: usize,
    /// Proxies whose `X-Forwarded-For` is believed (CIDRs). Default none: the peer address
    /// is the client. Behind an ingress, list the ingress pods' network, or every client
    /// shares the ingress's quota.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 100,
            request_burst: 200,
            sessions_per_minute: 120,
            tasks_per_minute: 60,
            calls_per_client: 8,
            calls_per_session: 8,
            listen_per_client: 16,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The quota flags.
#[derive(Debug, clap::Args)]
pub struct QuotaArgs {
    /// Requests per second per client and node (token bucket); more get 429 + Retry-After.
    #[arg(long, env = "MCPBUS_RATE_LIMIT_PER_SECOND", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate_limit_per_second: Option<u32>,
    /// Requests a client may send at once above that rate.
    #[arg(long, env = "MCPBUS_RATE_LIMIT_BURST", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate_limit_burst: Option<u32>,
    /// New sessions per minute per client and node.
    #[arg(long, env = "MCPBUS_SESSIONS_PER_MINUTE", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    sessions_per_minute: Option<u32>,
    /// New tasks (and calls that may become tasks) per minute per client and node.
    #[arg(long, env = "MCPBUS_TASKS_PER_MINUTE", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    tasks_per_minute: Option<u32>,
    /// Calls in flight per client and node.
    #[arg(long, env = "MCPBUS_MAX_CALLS_PER_CLIENT")]
    max_calls_per_client: Option<usize>,
    /// Calls in flight per session and node.
    #[arg(long, env = "MCPBUS_MAX_CALLS_PER_SESSION")]
    max_calls_per_session: Option<usize>,
    /// Open listen streams per client and node.
    #[arg(long, env = "MCPBUS_MAX_LISTEN_PER_CLIENT")]
    max_listen_per_client: Option<usize>,
    /// CIDRs of proxies whose X-Forwarded-For names the client (comma-separated).
    #[arg(long, env = "MCPBUS_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<IpNet>,
}

impl QuotaArgs {
    pub fn into_config(self, d: QuotaConfig) -> QuotaConfig {
        QuotaConfig {
            requests_per_second: self
                .rate_limit_per_second
                .unwrap_or(d.requests_per_second)
                .max(1),
            request_burst: self.rate_limit_burst.unwrap_or(d.request_burst).max(1),
            sessions_per_minute: self
                .sessions_per_minute
                .unwrap_or(d.sessions_per_minute)
                .max(1),
            tasks_per_minute: self.tasks_per_minute.unwrap_or(d.tasks_per_minute).max(1),
            calls_per_client: self
                .max_calls_per_client
                .unwrap_or(d.calls_per_client)
                .max(1),
            calls_per_session: self
                .max_calls_per_session
                .unwrap_or(d.calls_per_session)
                .max(1),
            listen_per_client: self
                .max_listen_per_client
                .unwrap_or(d.listen_per_client)
                .max(1),
            trusted_proxies: if self.trusted_proxies.is_empty() {
                d.trusted_proxies
            } else {
                self.trusted_proxies
            },
        }
    }
}

/// How long the quota sweeper waits between forgetting idle clients.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
