//! Starting a gateway: connect to NATS, declare the topology, start the catalogue watcher and
//! the reply router, then serve HTTP until shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_nats::jetstream;
use bus_schema::names::InstanceId;
use bus_schema::topology::{self, CATALOG_KV, CLUSTER_KV, SESSIONS_KV, TASKS_KV, WORKERS_KV};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::error::GatewayError;
use crate::request_state::{self, StateSealer};
use crate::route::Dispatcher;
use crate::session::SessionStore;
use crate::stream::{announce_catalog_changes, BroadcastHub, EventStore};
use crate::tasks::TaskStore;
use crate::Config;

/// Everything a request handler may use. Shared read-only; all mutable state is in NATS.
pub struct App {
    pub config: Config,
    pub nats: async_nats::Client,
    pub catalog: Catalog,
    pub dispatcher: Dispatcher,
    pub sessions: SessionStore,
    pub events: EventStore,
    pub broadcast: BroadcastHub,
    /// Tasks (2026-07-28 extension), readable by every gateway.
    pub tasks: TaskStore,
    /// Seals and opens MRTR `requestState` with the cluster's key.
    pub request_state: Arc<StateSealer>,
    /// Set when shutdown starts, so load balancers stop sending new requests.
    pub draining: AtomicBool,
    /// Fired when shutdown starts: resumable streams end with `retry:` so their clients
    /// continue on another node, listen streams end gracefully.
    pub release: CancellationToken,
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

/// Runs a gateway on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let nats = bus_schema::connect::connect(&config.nats_url, "mcpbus-gateway").await?;
    let js = jetstream::new(nats.clone());
    let replicas = config.js_replicas;
    let calls = topology::ensure_calls_stream(&js, replicas).await?;
    let workers = topology::ensure_kv(&js, WORKERS_KV, replicas).await?;
    let catalogs = topology::ensure_kv(&js, CATALOG_KV, replicas).await?;
    let sessions = topology::ensure_kv(&js, SESSIONS_KV, replicas).await?;
    let cluster = topology::ensure_kv(&js, CLUSTER_KV, replicas).await?;
    let tasks = topology::ensure_kv(&js, TASKS_KV, replicas).await?;
    let request_state = request_state::cluster_sealer(
        &config.request_state_keys,
        config.request_state_ttl,
        &cluster,
    )
    .await?;
    let events = EventStore::new(
        nats.clone(),
        js.clone(),
        topology::ensure_stream(
            &js,
            topology::events_stream(replicas, config.event_retention),
        )
        .await?,
        topology::ensure_stream(
            &js,
            topology::broadcast_stream(replicas, config.broadcast_retention),
        )
        .await?,
        calls.clone(),
    );

    let stop = CancellationToken::new();
    let gateway_id = InstanceId::new(format!(
        "gw-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
    .expect("generated ids are valid");
    let catalog = Catalog::start(
        workers,
        catalogs,
        config.max_worker_ttl,
        config.default_tool_timeout,
        stop.clone(),
    );
    let dispatcher = Dispatcher::start(
        nats.clone(),
        gateway_id.clone(),
        calls.clone(),
        stop.clone(),
    )
    .await?;
    let broadcast = BroadcastHub::start(events.clone(), stop.clone())
        .await
        .map_err(|e| GatewayError::Subscribe(e.into()))?;
    tokio::spawn(announce_catalog_changes(
        catalog.clone(),
        broadcast.clone(),
        stop.clone(),
    ));
    let release = CancellationToken::new();
    let task_store = TaskStore::new(tasks, events.clone());
    let app = Arc::new(App {
        config,
        nats,
        catalog,
        dispatcher,
        sessions: SessionStore::new(sessions),
        events,
        broadcast,
        tasks: task_store,
        request_state: Arc::new(request_state),
        draining: AtomicBool::new(false),
        release: release.clone(),
    });
    let addr = listener.local_addr().map_err(GatewayError::Serve)?;
    tracing::info!(%addr, gateway = %gateway_id, "gateway serving /mcp");

    let draining = CancellationToken::new();
    let (drain_deadline, delay) = (app.config.drain_timeout, app.config.shutdown_delay);
    let on_shutdown = {
        let app = app.clone();
        let draining = draining.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: not ready; handing streams to other nodes");
            app.draining.store(true, Ordering::Relaxed);
            app.release.cancel();
            // Keep accepting while load balancers notice we are not ready.
            tokio::time::sleep(delay).await;
            tracing::info!("closing the listener; finishing in-flight requests");
            draining.cancel();
        }
    };
    let server =
        axum::serve(listener, crate::http::router(app.clone())).with_graceful_shutdown(on_shutdown);
    let result = tokio::select! {
        r = server => r.map_err(GatewayError::Serve),
        _ = async { draining.cancelled().await; tokio::time::sleep(drain_deadline).await } => {
            tracing::warn!("drain deadline passed; closing remaining connections");
            Ok(())
        }
    };
    stop.cancel();
    if let Err(e) = app.nats.flush().await {
        tracing::debug!(error = %e, "final flush failed");
    }
    tracing::info!("gateway stopped");
    result
}
