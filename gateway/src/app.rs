//! The state every request handler shares: configuration and handles on the bus. Read-only;
//! all mutable state is in NATS.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::policy::Policies;
use crate::quota::Quotas;
use crate::request_state::StateSealer;
use crate::route::Dispatcher;
use crate::session::{SessionSignals, SessionStore};
use crate::stream::{BroadcastHub, EventStore};
use crate::tasks::Tasks;
use crate::Config;

/// Everything a request handler may use. Shared read-only; all mutable state is in NATS.
pub struct App {
    pub config: Config,
    pub nats: async_nats::Client,
    pub catalog: Catalog,
    pub dispatcher: Dispatcher,
    pub sessions: SessionStore,
    /// This gateway's open standalone streams by session, and the signals that end them.
    pub signals: SessionSignals,
    pub events: EventStore,
    pub broadcast: BroadcastHub,
    /// Tasks of both revisions, readable by every gateway.
    pub tasks: Tasks,
    /// What each principal may see and use (`--auth-policy`); none: everything.
    pub policy: Policies,
    /// Per-client quotas on this node (ADR 0012).
    pub quotas: Arc<Quotas>,
    /// Seals and opens MRTR `requestState` with the cluster's key.
    pub request_state: Arc<StateSealer>,
    /// Set when shutdown starts, so load balancers stop sending new requests.
    pub draining: AtomicBool,
    /// One permit per standalone or listen stream this node may hold
    /// (`Config::max_open_streams`).
    pub open_streams: Arc<Semaphore>,
    /// Fired when shutdown starts: resumable streams end with `retry:` so their clients
    /// continue on another node, listen streams end gracefully.
    pub release: CancellationToken,
    /// Verifies access tokens on `/mcp`; `None` when the gateway runs without auth.
    pub verifier: Option<Arc<crate::auth::Verifier>>,
}

impl App {
    /// Why this node should not receive traffic, if it should not.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::Relaxed) {
            Some("draining")
        } else if self.nats.connection_state() != async_nats::connection::State::Connected {
            Some("not connected to NATS")
        } else if !self.catalog.is_synced() {
            Some("catalogue not yet synchronised")
        } else {
            None
        }
    }
}
