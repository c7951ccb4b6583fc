//! How a worker behaves: timings, limits and its name in the pool.

use std::time::Duration;

use bus_schema::names::InstanceId;

/// Every default is chosen so that a stopped worker leaves the catalogue quickly without
/// flapping on a slow network.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// This process's name in the pool. Default: random, so replicas never collide.
    pub instance: Option<InstanceId>,
    /// Interval between liveness records. Default 2 s.
    pub heartbeat: Duration,
    /// How long gateways keep routing to this instance after its last heartbeat. Default 6 s
    /// (three missed beats), which keeps a killed worker's exit from `tools/list` under 10 s.
    /// Never less than twice `heartbeat`: a shorter one is raised to that.
    pub ttl: Duration,
    /// Most calls run at once; the rest wait in the queue. Default 16.
    pub max_in_flight: u32,
    /// How long a shutdown waits for running calls. Past it, they are stopped and handed back
    /// to the queue (NAK) for another replica. Default 30 s.
    pub drain_timeout: Duration,
    /// Where to serve this worker's Prometheus metrics (`/metrics`). Default: nowhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            instance: None,
            heartbeat: Duration::from_secs(2),
            ttl: Duration::from_secs(6),
            max_in_flight: 16,
            drain_timeout: Duration::from_secs(30),
            metrics_listen: None,
        }
    }
}
