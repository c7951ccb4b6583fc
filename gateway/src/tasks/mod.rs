//! Tasks, in one place: the record (`record.rs`), how replies move it on (`machine.rs`), its
//! store with the one compare-and-set loop (`store.rs`), the operations that run rounds,
//! answer and cancel (`service.rs`), and the two revisions' renderings (`view.rs`).
//!
//! State lives in JetStream so that any gateway answers for any task and a task outlives
//! the gateway and the connection that created it. A task's record lives in KV
//! `mcpbus-tasks`; the replies of its calls are stored in `MCPBUS_EVENTS` under the task's
//! scope, like a session's request streams. The record is brought up to date lazily:
//! whichever gateway reads a working task looks at the last reply of its current call and
//! writes what it finds (compare-and-set, so concurrent readers agree). Input a task needs
//! is asked for the MRTR way: the worker's round ends with an `InputRequiredResult`, the
//! client answers with `tasks/update`, and the next round runs with the answers and the
//! worker's state. This module knows nothing of HTTP or of lanes.

mod error;
mod machine;
mod record;
mod service;
mod store;
pub mod view;

pub use error::TaskError;
pub use record::{TaskOwner, TaskRecord, TaskStatus};
pub use service::{Cancelled, NewTask, Tasks};
pub use store::TaskStore;
