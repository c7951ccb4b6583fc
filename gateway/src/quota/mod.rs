//! Per-client quotas (ADR 0012): request rate, new sessions per minute, calls in flight per
//! client and per session, and listen streams per client. A client is its principal when
//! the gateway checks tokens, else its address ([`ClientKey`]).
//!
//! Every quota is **per gateway node**: a client spread over N nodes by the load balancer
//! gets up to N times each figure. Counting cluster-wide would put a bus round trip on every
//! request; the per-node figures are set with the node count in mind (ADR 0012).

mod client;
mod config;
mod rate;
mod slots;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio_util::sync::CancellationToken;

pub use client::ClientKey;
pub use config::{QuotaArgs, QuotaConfig};
pub use rate::Buckets;
pub use slots::{KeyedSlots, Slot};

use crate::metrics::METRICS;

/// Which quota refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaExceeded {
    #[error("Too Many Requests: this client may send {per_second} requests per second (burst {burst}) to each gateway; retry after {} s", whole_secs(*.retry_after))]
    Rate {
        per_second: u32,
        burst: u32,
        retry_after: Duration,
    },
    #[error("Too Many Requests: this client may open {per_minute} sessions per minute on each gateway; retry after {} s", whole_secs(*.retry_after))]
    Sessions {
        per_minute: u32,
        retry_after: Duration,
    },
    #[error("Too Many Requests: this client may start {per_minute} tasks (or calls that may become tasks) per minute on each gateway; retry after {} s", whole_secs(*.retry_after))]
    Tasks {
        per_minute: u32,
        retry_after: Duration,
    },
    #[error("Too Many Requests: this client already has {limit} calls in flight on this gateway; wait for one to finish")]
    ClientCalls { limit: usize },
    #[error("Too Many Requests: this session already has {limit} calls in flight on this gateway; wait for one to finish")]
    SessionCalls { limit: usize },
    #[error("Too Many Requests: this client already holds {limit} listen streams on this gateway; close one first")]
    ListenStreams { limit: usize },
}

impl QuotaExceeded {
    /// The quota's name, in metrics and in the error's `data.limit`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rate { .. } => "request_rate",
            Self::Sessions { .. } => "sessions_per_minute",
            Self::Tasks { .. } => "tasks_per_minute",
            Self::ClientCalls { .. } => "calls_per_client",
            Self::SessionCalls { .. } => "calls_per_session",
            Self::ListenStreams { .. } => "listen_streams_per_client",
        }
    }

    /// When trying again can succeed: whole seconds, at least 1 (`Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        let wait = match self {
            Self::Rate { retry_after, .. }
            | Self::Sessions { retry_after, .. }
            | Self::Tasks { retry_after, .. } => *retry_after,
            _ => Duration::from_secs(1),
        };
        whole_secs(wait)
    }
}

/// A wait in whole seconds, rounded up, at least 1: what `Retry-After` can say.
fn whole_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// This node's quota state.
pub struct Quotas {
    requests: Buckets,
    /// Requests per address before their token is checked (auth on): many principals may
    /// share an address, so it allows [`ADDRESS_SHARE`] times a client's rate.
    addresses: Buckets,
    sessions: Buckets,
    tasks: Buckets,
    client_calls: KeyedSlots,
    session_calls: KeyedSlots,
    listen_streams: KeyedSlots,
    trusted_proxies: Vec<IpNet>,
    rate: (u32, u32),
    sessions_per_minute: u32,
    tasks_per_minute: u32,
}

/// How many clients' worth of requests one address may send before tokens are checked.
pub const ADDRESS_SHARE: u32 = 10;

/// The slots one call holds while it runs.
pub struct CallSlot {
    _client: Slot,
    _session: Option<Slot>,
}

impl Quotas {
    pub fn new(config: &QuotaConfig) -> Arc<Self> {
        let nz = |n: u32| NonZeroU32::new(n.max(1)).expect("at least 1");
        Arc::new(Self {
            requests: Buckets::new(
                nz(config.requests_per_second),
                Duration::from_secs(1),
                nz(config.request_burst),
            ),
            addresses: Buckets::new(
                nz(config.requests_per_second.saturating_mul(ADDRESS_SHARE)),
                Duration::from_secs(1),
                nz(config.request_burst.saturating_mul(ADDRESS_SHARE)),
            ),
            sessions: Buckets::new(
                nz(config.sessions_per_minute),
                Duration::from_secs(60),
                nz(config.sessions_per_minute),
            ),
            tasks: Buckets::new(
                nz(config.tasks_per_minute),
                Duration::from_secs(60),
                nz(config.tasks_per_minute),
            ),
            client_calls: KeyedSlots::new(config.calls_per_client),
            session_calls: KeyedSlots::new(config.calls_per_session),
            listen_streams: KeyedSlots::new(config.listen_per_client),
            trusted_proxies: config.trusted_proxies.clone(),
            rate: (config.requests_per_second, config.request_burst),
            sessions_per_minute: config.sessions_per_minute,
            tasks_per_minute: config.tasks_per_minute,
        })
    }

    /// Forgets idle clients' buckets every minute until `stop`.
    pub fn start_sweeping(self: &Arc<Self>, stop: CancellationToken) {
        let quotas = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(config::SWEEP_EVERY) => {}
                }
                for buckets in [
                    &quotas.requests,
                    &quotas.addresses,
                    &quotas.sessions,
                    &quotas.tasks,
                ] {
                    buckets.forget_idle();
                }
            }
        });
    }

    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.trusted_proxies
    }

    /// One request of `client` (every request to `/mcp`).
    pub fn request(&self, client: &ClientKey) -> Result<(), QuotaExceeded> {
        self.requests.take(client).map_err(|retry_after| {
            refused(QuotaExceeded::Rate {
                per_second: self.rate.0,
                burst: self.rate.1,
                retry_after,
            })
        })
    }

    /// One request from `address` (a [`ClientKey`] without principal) before its token is
    /// checked: token checks cost a signature or an introspection, so a flood of bad tokens
    /// is throttled before it costs anything.
    pub fn address(&self, address: &ClientKey) -> Result<(), QuotaExceeded> {
        self.addresses.take(address).map_err(|retry_after| {
            refused(QuotaExceeded::Rate {
                per_second: self.rate.0.saturating_mul(ADDRESS_SHARE),
                burst: self.rate.1.saturating_mul(ADDRESS_SHARE),
                retry_after,
            })
        })
    }

    /// One new task of `client`.
    pub fn new_task(&self, client: &ClientKey) -> Result<(), QuotaExceeded> {
        self.tasks.take(client).map_err(|retry_after| {
            refused(QuotaExceeded::Tasks {
                per_minute: self.tasks_per_minute,
                retry_after,
            })
        })
    }

    /// One new session of `client`.
    pub fn new_session(&self, client: &ClientKey) -> Result<(), QuotaExceeded> {
        self.sessions.take(client).map_err(|retry_after| {
            refused(QuotaExceeded::Sessions {
                per_minute: self.sessions_per_minute,
                retry_after,
            })
        })
    }

    /// Slots for one call of `client`, in `session` if it has one.
    pub fn call(
        &self,
        client: &ClientKey,
        session: Option<&str>,
    ) -> Result<CallSlot, QuotaExceeded> {
        let session = match session {
            Some(s) => Some(self.session_calls.take(s).ok_or_else(|| {
                refused(QuotaExceeded::SessionCalls {
                    limit: self.session_calls.limit(),
                })
            })?),
            None => None,
        };
        let client = self.client_calls.take(client.as_str()).ok_or_else(|| {
            refused(QuotaExceeded::ClientCalls {
                limit: self.client_calls.limit(),
            })
        })?;
        Ok(CallSlot {
            _client: client,
            _session: session,
        })
    }

    /// A slot for one more listen stream of `client`.
    pub fn listen(&self, client: &ClientKey) -> Result<Slot, QuotaExceeded> {
        self.listen_streams.take(client.as_str()).ok_or_else(|| {
            refused(QuotaExceeded::ListenStreams {
                limit: self.listen_streams.limit(),
            })
        })
    }
}

fn refused(e: QuotaExceeded) -> QuotaExceeded {
    METRICS.refused.with_label_values(&[e.name()]).inc();
    e
}
