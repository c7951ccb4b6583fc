//! The worker: its configuration, and the run loop that ties registration, pulling and drain
//! together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::topology;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalogue::Catalogue;
use crate::registry::Registration;
use crate::resource::{PromptDef, ResourceDef};
use crate::runner::Runner;
use crate::tool::ToolDef;
use crate::WorkerError;

/// How a worker behaves. Every default is chosen so that a stopped worker leaves the
/// catalogue quickly without flapping on a slow network.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// This process's name in the pool. Default: random, so replicas never collide.
    pub instance: Option<InstanceId>,
    /// Interval between liveness records. Default 2 s.
    pub heartbeat: Duration,
    /// How long gateways keep routing to this instance after its last heartbeat. Default 6 s
    /// (three missed beats), which keeps a killed worker's exit from `tools/list` under 10 s.
    pub ttl: Duration,
    /// Most calls run at once; the rest wait in the queue. Default 16.
    pub max_in_flight: u32,
    /// How long a shutdown waits for running calls before cancelling them. Default 30 s.
    pub drain_timeout: Duration,
    /// JetStream replicas for streams and buckets this worker creates if they are missing.
    /// Default 1; use 3 on a clustered NATS.
    pub js_replicas: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            instance: None,
            heartbeat: Duration::from_secs(2),
            ttl: Duration::from_secs(6),
            max_in_flight: 16,
            drain_timeout: Duration::from_secs(30),
            js_replicas: 1,
        }
    }
}

/// A tool worker: one pool name and what it serves.
pub struct Worker {
    pool: PoolName,
    config: WorkerConfig,
    catalogue: Catalogue,
    /// A tool name declared twice while building, reported by `run`.
    duplicate: Option<String>,
}

/// Upper bound of calls one pool may hold un-acknowledged across all its replicas. The
/// per-process bound is `max_in_flight`; this only stops a runaway pool.
const POOL_MAX_ACK_PENDING: i64 = 10_000;

impl Worker {
    pub fn new(pool: PoolName, config: WorkerConfig) -> Self {
        Self {
            pool,
            config,
            catalogue: Catalogue::default(),
            duplicate: None,
        }
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

    /// Registers, serves calls until `shutdown` resolves, then drains: stops pulling,
    /// lets running calls finish up to `drain_timeout`, and deregisters.
    pub async fn run(
        self,
        nats: async_nats::Client,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), WorkerError> {
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
        let js = jetstream::new(nats.clone());
        let consumer = topology::ensure_pool_consumer(
            &js,
            &self.pool,
            POOL_MAX_ACK_PENDING,
            self.config.js_replicas,
        )
        .await?;
        let mut registration =
            Registration::open(&js, &self.pool, &instance, &served, &self.config).await?;
        registration.register().await?;
        tracing::info!(pool = %self.pool, %instance, tools = served.tools.len(), "worker registered");
        // Visible to standard NATS tooling (`nats micro ls/info/stats`). Not needed for
        // serving, so a failure only costs the visibility.
        let service = announce_service(&nats, &self.pool, &instance, &self.config).await;

        let runner = Arc::new(Runner {
            nats,
            instance,
            catalogue: self.catalogue.clone(),
            slots: Arc::new(Semaphore::new(self.config.max_in_flight.max(1) as usize)),
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

        tokio::pin!(shutdown);
        let pull_result = tokio::select! {
            _ = &mut shutdown => None,
            r = &mut Box::pin(wait_pulling(pulling)) => Some(r),
        };
        stop_pulling.cancel();
        tracing::info!("draining: no new calls; waiting for running ones");
        runner.tracker.close();
        if tokio::time::timeout(self.config.drain_timeout, runner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("drain deadline passed; cancelling running calls");
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
        tracing::info!("worker stopped");
        pull_result.unwrap_or(Ok(()))
    }
}

/// Registers this instance with the NATS service API under `mcpbus-<pool>`, its pool and
/// instance in the metadata.
async fn announce_service(
    nats: &async_nats::Client,
    pool: &PoolName,
    instance: &InstanceId,
    config: &WorkerConfig,
) -> Option<async_nats::service::Service> {
    use async_nats::service::ServiceExt;
    let metadata = std::collections::HashMap::from([
        ("pool".to_owned(), pool.to_string()),
        ("instance".to_owned(), instance.to_string()),
        ("max_in_flight".to_owned(), config.max_in_flight.to_string()),
        (
            "sdk".to_owned(),
            concat!("mcpbus-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
        ),
    ]);
    let started = nats
        .service_builder()
        .description(format!("mcpbus worker pool {pool}"))
        .metadata(metadata)
        .start(
            bus_schema::subjects::service_name(pool),
            env!("CARGO_PKG_VERSION"),
        )
        .await;
    match started {
        Ok(service) => Some(service),
        Err(e) => {
            tracing::warn!(error = %e, "cannot announce the worker to the NATS service API");
            None
        }
    }
}

async fn wait_pulling(
    handle: tokio::task::JoinHandle<Result<(), WorkerError>>,
) -> Result<(), WorkerError> {
    handle.await.unwrap_or(Ok(()))
}
