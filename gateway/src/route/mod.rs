//! Calls to workers: publishing them to the calls work queue and collecting the replies.
//!
//! Each gateway subscribes once to its own reply wildcard; a call registers a channel under
//! its id before it is published, so no reply can arrive unseen. The channel is removed when
//! the caller drops its [`PendingCall`], which is how a client that disconnects stops
//! receiving (and buffering) the rest of a call.

mod dispatcher;
mod error;
mod tracker;

pub use dispatcher::{new_call_id, prepare, unix_ms, CallSpec, Dispatcher, PendingCall};
pub use error::{CallError, RouteError};
pub use tracker::{CallTracker, CallUpdate};
