//! The worker: what it serves under which pool name, and the run loop that ties
//! registration, pulling and drain together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::{subjects, topology};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cancels::Cancels;
use crate::catalogue::Catalogue;
use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::prompt::PromptDef;
use crate::registry::Registration;
use crate::resource::ResourceDef;
use crate::runner::Runner;
use crate::service::announce_service;
use crate::tool::ToolDef;

/// A tool worker: one pool name and what it serves.
pub struct Worker {
    /// As given; validated by `run`, so that building a worker stays one chain of calls.
    pool: String,
    config: WorkerConfig,
    catalogue: Catalogue,
    /// A tool name declared twice while building, reported by `run`.
    duplicate: Option<String>,
}

/// Upper bound of calls one pool may hold un-acknowledged across all its replicas. The
/// per-process bound is `max_in_flight`; this only stops a runaway pool.
const POOL_MAX_ACK_PENDING: i64 = 10_000;

impl Worker {
    /// A worker of pool `pool`: replicas with the same pool name share its calls. The name
    /// becomes a NATS subject token, so it may hold only ASCII letters, digits, `-` and `_`;
    /// [`Worker::run`] refuses any other with [`WorkerError::InvalidPool`].
    pub fn new(pool: impl Into<String>) -> Self {
        Self {
            pool: pool.into(),
            config: WorkerConfig::default(),
            catalogue: Catalogue::default(),
            duplicate: None,
        }
    }

    /// Replaces the default configuration.
    pub fn config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// A resource or resource template.
    pub fn resource(self, resource: ResourceDef) -> Self {
        self.catalogue.add_resource(resource);
        self
    }

    pub fn prompt(self, prompt: PromptDef) -> Self {
        self.catalogue.add_prompt(prompt);
        self
    }

    pub fn tool(mut self, tool: ToolDef) -> Self {
        if self.catalogue.has_tool(tool.name()) {
            self.duplicate.get_or_insert_with(|| tool.name().to_owned());
        }
        self.catalogue.add_tool(tool);
        self
    }

    pub fn tools(self, tools: impl IntoIterator<Item = ToolDef>) -> Self {
        tools.into_iter().fold(self, Worker::tool)
    }

    /// A handle to change what this worker serves while it runs.
    pub fn catalogue(&self) -> Catalogue {
        self.catalogue.clone()
    }

    /// Registers, serves calls until `shutdown` resolves or the operator asks this instance
    /// to drain over the bus (`mcpbusctl drain POOL/INSTANCE`, PROTOCOL.md §4.3), then
    /// drains: stops pulling, lets running calls finish up to `drain_timeout`, and
    /// deregisters.
    pub async fn run(
        self,
        nats: async_nats::Client,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), WorkerError> {
        let pool = PoolName::new(self.pool).map_err(WorkerError::InvalidPool)?;
        if let Some(name) = self.duplicate {
            return Err(WorkerError::DuplicateTool(name));
        }
        let served = self.catalogue.snapshot();
        if served.is_empty() {
            return Err(WorkerError::NoTools);
        }
        let instance = match self.config.instance.clone() {
            Some(i) => i,
            None => InstanceId::new(uuid::Uuid::new_v4().simple().to_string()[..12].to_owned())
                .expect("hex is a valid instance id"),
        };
        // Bound before registering: a port already taken is a start-up error, not a
        // worker that serves calls but cannot be scraped.
        let metrics_stop = CancellationToken::new();
        if let Some(addr) = self.config.metrics_listen {
            let listener = crate::metrics::bind(addr)
                .await
                .map_err(|e| WorkerError::MetricsListen(addr, e))?;
            tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "serving /metrics");
            tokio::spawn(crate::metrics::serve(listener, metrics_stop.clone()));
        }
        let _stop_metrics = metrics_stop.drop_guard();
        let js = jetstream::new(nats.clone());
        let consumer = topology::ensure_pool_consumer(&js, &pool, POOL_MAX_ACK_PENDING).await?;
        let mut registration =
            Registration::open(&js, &pool, &instance, &served, &self.config).await?;
        let alive = hold_alive_subscription(&nats, &pool, &instance).await;
        registration.set_alive_subscription(alive.is_some());
        registration.register().await?;
        tracing::info!(%pool, %instance, tools = served.tools.len(), "worker registered");
        // Visible to standard NATS tooling (`nats micro ls/info/stats`). Not needed for
        // serving, so a failure only costs the visibility.
        let service = announce_service(&nats, &pool, &instance, &self.config).await;

        // Subscribed before the first pull, so that a drain asked right after registration
        // is heard. Without it the worker still drains on `shutdown`.
        let drain_subject = subjects::drain(&pool, &instance);
        let drain_asked = match nats.subscribe(drain_subject).await {
            Ok(sub) => Some(sub),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for drain requests; SIGTERM still drains");
                None
            }
        };
        // Before the first pull, so that every call is watched from its start (5.6).
        let cancels = Cancels::listen(&nats, &pool).await;
        let max_in_flight = self.config.max_in_flight.max(1) as usize;
        let runner = Arc::new(Runner {
            nats,
            pool: pool.clone(),
            instance,
            catalogue: self.catalogue.clone(),
            slots: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            cancels,
            tracker: TaskTracker::new(),
            cancel_all: CancellationToken::new(),
        });
        let stop_pulling = CancellationToken::new();
        let stop_beating = CancellationToken::new();
        let pulling = tokio::spawn(runner.clone().pull_until(consumer, stop_pulling.clone()));
        let beating = {
            let stop = stop_beating.clone();
            let catalogue = self.catalogue.clone();
            async move {
                registration.keep_alive(stop, catalogue).await;
                registration
            }
        };
        let beating = tokio::spawn(beating);

        let mut pulling = pulling;
        let pull_result = tokio::select! {
            _ = shutdown => None,
            _ = drain_requested(drain_asked) => None,
            r = &mut pulling => Some(r.unwrap_or(Ok(()))),
        };
        stop_pulling.cancel();
        tracing::info!("draining: no new calls; waiting for running ones");
        let drain_deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        // The pull still open may deliver calls until it expires; they run like the others,
        // so the tracker is only waited on once nothing more can join it.
        if pull_result.is_none() {
            let _ = tokio::time::timeout_at(drain_deadline, pulling).await;
        }
        runner.tracker.close();
        if tokio::time::timeout_at(drain_deadline, runner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("drain deadline passed; handing running calls back to the queue");
            runner.cancel_all.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), runner.tracker.wait()).await;
        }
        stop_beating.cancel();
        if let Ok(registration) = beating.await {
            registration.deregister().await;
        }
        if let Some(service) = service {
            let _ = service.stop().await;
        }
        if let Some(alive) = alive {
            alive.abort();
        }
        tracing::info!("worker stopped");
        pull_result.unwrap_or(Ok(()))
    }
}

/// Subscribes to this instance's alive subject for as long as the connection lives, before the
/// record says so (PROTOCOL.md §4.2, ADR 0029): gateways probe it, and the server's "no
/// responders" once the connection is gone (a kill -9) removes the instance within about a
/// second instead of a TTL. Probes are read and dropped, never answered. `None` when the
/// subscription cannot be made: the TTL alone then applies.
async fn hold_alive_subscription(
    nats: &async_nats::Client,
    pool: &PoolName,
    instance: &InstanceId,
) -> Option<tokio::task::JoinHandle<()>> {
    let subscribed = async {
        let sub = nats.subscribe(subjects::alive(pool, instance)).await?;
        // The server holds it before the record that announces it is written.
        nats.flush().await?;
        Ok::<_, async_nats::Error>(sub)
    };
    match subscribed.await {
        Ok(mut sub) => Some(tokio::spawn(
            async move { while sub.next().await.is_some() {} },
        )),
        Err(e) => {
            tracing::warn!(error = %e, "cannot hold the alive subscription; gateways will wait for the TTL");
            None
        }
    }
}

/// Resolves when a message arrives on this instance's drain subject; never without a
/// subscription, or when the connection closes (that is no request to drain).
async fn drain_requested(subscription: Option<async_nats::Subscriber>) {
    if let Some(mut subscription) = subscription {
        if subscription.next().await.is_some() {
            tracing::info!("the operator asked this instance to drain");
            return;
        }
    }
    std::future::pending::<()>().await
}
