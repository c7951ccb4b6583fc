//! Why a call did not produce a worker's answer.

use std::time::Duration;

use bus_schema::names::{InstanceId, PoolName};
use serde_json::json;

use crate::error::McpError;

#[derive(Debug, thiserror::Error)]
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
    #[error("cannot queue the call: {0}")]
    Publish(String),
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
            RouteError::Publish(_) => "bus_unavailable",
        }
    }
}

impl From<RouteError> for McpError {
    fn from(e: RouteError) -> Self {
        let data = json!({"reason": e.reason()});
        match e {
            RouteError::UnknownTool(_) => McpError::invalid_params(e.to_string()),
            _ => McpError::internal(e.to_string()).with_data(data),
        }
    }
}
