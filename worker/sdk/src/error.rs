//! Errors that stop a worker. Failures of single calls never surface here: they become
//! results or errors sent back to the caller (see `call_error.rs`).

use bus_schema::names::NameError;
use bus_schema::topology::TopologyError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The pool name given to [`crate::Worker::new`] cannot be a NATS subject token. Reported
    /// by `run`, so that building a worker stays one chain of calls.
    #[error("invalid pool name: {0}")]
    InvalidPool(#[source] NameError),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("cannot register worker: {0}")]
    Register(#[source] async_nats::Error),
    #[error("cannot pull calls from JetStream: {0}")]
    Pull(#[source] async_nats::Error),
    #[error("tool {0:?} is declared twice")]
    DuplicateTool(String),
    #[error("worker declares no tools, resources or prompts")]
    NoTools,
    #[error("cannot serve metrics on {0}: {1}")]
    MetricsListen(std::net::SocketAddr, #[source] std::io::Error),
}
