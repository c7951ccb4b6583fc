//! Why a task request failed.

use super::record::TaskStatus;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// Never existed, expired, or belongs to someone else: the three look the same.
    #[error("Unknown task: {0}")]
    Unknown(String),
    /// The bus, never the client.
    #[error("task store: {0}")]
    Store(String),
    /// The tasks bucket refused the record for its size limits (ADR 0007).
    #[error(transparent)]
    Refused(#[from] crate::store_limits::StoreRefused),
    #[error("the task kept changing; try again")]
    Conflict,
    #[error("Task {0} was cancelled; it has no result")]
    NoResult(String),
    #[error("Task {id} already ended ({status:?}); it cannot be cancelled")]
    Ended { id: String, status: TaskStatus },
}
