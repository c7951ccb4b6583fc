//! Why a call did not produce a worker's answer.

use std::time::Duration;

use bus_schema::messages::WireError;
use bus_schema::names::{InstanceId, PoolName};

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    #[error("Unknown tool: {0}")]
    UnknownTool(String),
    #[error("no live worker serves tool {tool:?}: the last worker of pool \"{pool}\" has left")]
    NoWorker { tool: String, pool: PoolName },
    #[error("tool {tool:?} timed out after {}: no worker of pool \"{pool}\" picked the call up", fmt_secs(*.after))]
    QueuedTimeout {
        tool: String,
        pool: PoolName,
        after: Duration,
    },
    #[error("tool {tool:?} timed out after {}: worker {instance} did not answer in time", fmt_secs(*.after))]
    RunningTimeout {
        tool: String,
        instance: InstanceId,
        after: Duration,
    },
    #[error("the call queue is full; try again later")]
    QueueFull,
    #[error("the client did not read the call's replies fast enough; the call was stopped")]
    ClientTooSlow,
    #[error("cannot queue the call: {0}")]
    Publish(String),
    /// The calls queue or the events stream refused the call for its size limits.
    #[error(transparent)]
    Store(#[from] crate::store_limits::StoreRefused),
}

fn fmt_secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl RouteError {
    /// A short reason, machine-readable in `error.data.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            RouteError::UnknownTool(_) => "unknown_tool",
            RouteError::NoWorker { .. } => "no_worker",
            RouteError::QueuedTimeout { .. } | RouteError::RunningTimeout { .. } => "timeout",
            RouteError::QueueFull => "queue_full",
            RouteError::ClientTooSlow => "client_too_slow",
            RouteError::Publish(_) => "bus_unavailable",
            RouteError::Store(r) => r.reason(),
        }
    }
}

/// Why a call ended without a result: the gateway's reason, or the worker's own error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The worker (or a bridged server) answered with this JSON-RPC error.
    #[error("{}", .0.message)]
    Worker(WireError),
}
