//! Starting a gateway: connect to NATS, declare the topology, start the catalogue watcher and
//! the reply router, then serve HTTP until shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_nats::jetstream;
use bus_schema::names::InstanceId;
use bus_schema::topology::{
    self, CATALOG_KV, CLUSTER_KV, GATEWAYS_KV, SESSIONS_KV, TASKS_KV, WORKERS_KV,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::catalog::Catalog;
use crate::connection::{self, Limits};
use crate::error::GatewayError;
use crate::policy::{self, Policies};
use crate::presence::Presence;
use crate::quota::Quotas;
use crate::request_state;
use crate::route::Dispatcher;
use crate::session::{CacheSettings, SessionCache, SessionSignals, SessionStore};
use crate::stream::{
    announce_catalog_changes, announce_policy_changes, BroadcastHub, EventStore, LiveRouter,
};
use crate::tasks::{TaskStore, Tasks};
use crate::Config;

/// Runs a gateway on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    // The safe default before anything else: no unprotected gateway beyond loopback.
    let addr = listener.local_addr().map_err(GatewayError::Serve)?;
    config.auth.check_listen(addr)?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| GatewayError::Listen { addr, source })?,
        ),
        None => None,
    };
    // Size limits on every stream and bucket first (ADR 0007), on a connection of its own.
    crate::store_limits::declare(&config).await?;
    let nats = bus_schema::connect::connect(&config.nats, "mcpbus-gateway").await?;
    let js = jetstream::new(nats.clone());
    let replicas = config.js_replicas;
    let calls = topology::ensure_calls_stream(&js, replicas).await?;
    let workers = topology::ensure_kv(&js, WORKERS_KV, replicas).await?;
    let catalogs = topology::ensure_kv(&js, CATALOG_KV, replicas).await?;
    let sessions = topology::ensure_kv(&js, SESSIONS_KV, replicas).await?;
    let cluster = topology::ensure_kv(&js, CLUSTER_KV, replicas).await?;
    let tasks = topology::ensure_kv(&js, TASKS_KV, replicas).await?;
    let gateways = topology::ensure_kv(&js, GATEWAYS_KV, replicas).await?;
    let request_state = request_state::cluster_sealer(
        &config.request_state_keys,
        config.request_state_ttl,
        &cluster,
    )
    .await?;
    let stop = CancellationToken::new();
    let events_stream = topology::ensure_stream(
        &js,
        topology::events_stream(replicas, config.event_retention),
    )
    .await?;
    let router = LiveRouter::start(nats.clone(), stop.clone())
        .await
        .map_err(GatewayError::Subscribe)?;
    let events = EventStore::new(
        nats.clone(),
        js.clone(),
        events_stream,
        topology::ensure_stream(
            &js,
            topology::broadcast_stream(replicas, config.broadcast_retention),
        )
        .await?,
        calls.clone(),
        router,
    );

    let quotas = Quotas::new(&config.quotas);
    quotas.start_sweeping(stop.clone());
    let policy = match &config.auth_policy {
        Some(path) => policy::watch(path.clone(), stop.clone()).await?,
        None => Policies::none(),
    };
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
        (nats.clone(), gateway_id.clone()),
        stop.clone(),
    );
    // Listed for operators (`mcpbusctl status`) until it stops.
    let presence =
        tokio::spawn(Presence::new(gateways, gateway_id.clone(), addr).keep_alive(stop.clone()));
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
    crate::stream::serve_announcements(nats.clone(), broadcast.clone(), stop.clone())
        .await
        .map_err(|e| GatewayError::Subscribe(e.into()))?;
    tokio::spawn(crate::metrics::watch_pools(
        js.clone(),
        catalog.clone(),
        stop.clone(),
    ));
    tokio::spawn(crate::metrics::watch_connection(nats.clone(), stop.clone()));
    tokio::spawn(crate::store_limits::watch_usage(
        js.clone(),
        config.store_limits,
        stop.clone(),
    ));
    tokio::spawn(announce_policy_changes(
        policy.subscribe(),
        broadcast.clone(),
        stop.clone(),
    ));
    let sessions = SessionStore::cached(
        sessions,
        SessionCache::new(
            nats.clone(),
            CacheSettings {
                max_entries: config.session_cache_entries,
                revalidate: config.session_cache_revalidate,
            },
        ),
        stop.clone(),
    );
    let signals = SessionSignals::start(nats.clone(), sessions.cache().cloned(), stop.clone())
        .await
        .map_err(|e| GatewayError::Subscribe(e.into()))?;
    let release = CancellationToken::new();
    let tasks = Tasks::new(
        TaskStore::new(tasks, events.clone()),
        dispatcher.clone(),
        catalog.clone(),
        config.default_tool_timeout,
    );
    let open_streams = Arc::new(tokio::sync::Semaphore::new(config.max_open_streams));
    let verifier = config
        .auth
        .settings()
        .map(|s| Arc::new(crate::auth::Verifier::new(s.clone())));
    if let Some(v) = verifier.clone() {
        tokio::spawn(async move { v.warm_up().await });
    }
    let app = Arc::new(App {
        open_streams,
        config,
        nats,
        catalog,
        dispatcher,
        sessions,
        signals,
        events,
        broadcast,
        tasks,
        request_state: Arc::new(request_state),
        policy,
        quotas,
        draining: AtomicBool::new(false),
        release: release.clone(),
        verifier,
    });
    let auth = if app.verifier.is_some() {
        "oauth"
    } else {
        "none"
    };
    tracing::info!(%addr, gateway = %gateway_id, auth, "gateway serving /mcp");

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
    tokio::spawn(on_shutdown);
    let limits = Limits {
        header_read_timeout: app.config.header_read_timeout,
        idle_timeout: app.config.idle_timeout,
        write_timeout: app.config.write_timeout,
        max_connections: app.config.max_connections,
        max_header_bytes: app.config.max_header_bytes,
        http2_max_streams: app.config.http2_max_streams,
    };
    if let Some(metrics) = metrics_listener {
        let addr = metrics.local_addr().map_err(GatewayError::Serve)?;
        tracing::info!(%addr, "serving /metrics");
        tokio::spawn(connection::serve(
            metrics,
            crate::http::metrics_router(),
            // Scrapers are few: a small cap keeps this port from holding many sockets.
            Limits {
                max_connections: 64,
                ..limits
            },
            draining.clone(),
        ));
    }
    let server = connection::serve(
        listener,
        crate::http::router(app.clone()),
        limits,
        draining.clone(),
    );
    let result = tokio::select! {
        r = server => r.map_err(GatewayError::Serve),
        _ = async { draining.cancelled().await; tokio::time::sleep(drain_deadline).await } => {
            tracing::warn!("drain deadline passed; closing remaining connections");
            Ok(())
        }
    };
    stop.cancel();
    // Its record goes before the connection does.
    let _ = presence.await;
    if let Err(e) = app.nats.flush().await {
        tracing::debug!(error = %e, "final flush failed");
    }
    tracing::info!("gateway stopped");
    result
}
