//! Announcing a worker to the NATS service API, so that standard NATS tooling
//! (`nats micro ls/info/stats`) lists every live replica. Serving does not depend on it.

use bus_schema::names::{InstanceId, PoolName};

use crate::config::WorkerConfig;

/// Registers this instance with the NATS service API under `mcpbus-<pool>`, its pool and
/// instance in the metadata.
pub(crate) async fn announce_service(
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
