//! The MCP core: one method table for both lanes, knowing nothing of HTTP.
//!
//! An edge (`http/`) frames JSON-RPC, checks its transport rules and builds a [`Caller`],
//! whose [`Profile`] holds what differs between the revisions. The core parses the request
//! once ([`Request`]), serves it in [`dispatch`], and answers with an [`Outcome`] or a
//! [`CoreError`]; the edge renders either. Requests flow:
//! `request.rs` → `dispatch.rs` → `lists.rs` | `calls.rs` | `tasks.rs` | `session.rs`.
//!
//! The core may use the stores (`session`, `tasks`), the catalogue, the dispatcher and the
//! event streams (`stream`); it never touches axum, headers or status codes.
//!
//! Where a rule goes: one that needs the HTTP request (authentication, transport limits)
//! belongs in a layer every edge passes through before the core; one that needs to know
//! what is asked (authorization per method or tool, quotas, tracing) in [`Request::parse`]
//! or [`dispatch`], which every request goes through.

mod answer_id;
mod caller;
mod calls;
mod dispatch;
mod error;
mod limits;
pub mod listen;
mod lists;
mod meta;
mod mrtr;
mod outcome;
mod profile;
mod request;
mod server_info;
mod session;
mod tasks;

pub use bus_schema::mcp::LogLevel;
pub use caller::{Caller, Origin};
pub use dispatch::{answer, dispatch, notify};
pub use error::CoreError;
pub use limits::Limited;
pub use listen::{notification_for, ListenFilter};
pub use mrtr::{not_allowed, Mrtr};
pub use outcome::{Cache, CallFeed, CallPlan, Delivery, Outcome, TaskOutcome};
pub use profile::{Profile, TaskFlavour};
pub use request::{Command, Request};
pub use server_info::server_info;
pub use session::end as end_session;
