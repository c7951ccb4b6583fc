//! The Rust SDK for mcpbus tool workers.
//!
//! A worker declares tools ([`ToolDef`]), then [`Worker::run`] registers them in the
//! cluster's catalogue, keeps the registration alive with heartbeats, and serves calls that
//! gateways queue on JetStream. Several processes running the same [`Worker`] under one pool
//! name share the pool's queue: that is how a pool scales.
//!
//! A handler returns `Ok` with a `String`, a [`ToolOutput`] or [`Json`] (structured content,
//! whose type becomes the tool's `outputSchema`), or fails with a [`CallError`]: a
//! [`ToolError`] the model reads, a [`ProtocolError`] with a JSON-RPC code, or the
//! [`InputRequired`] that [`CallContext::ask`] returns while it waits for the client.
//!
//! ```no_run
//! use mcpbus_worker_sdk::{Json, ToolDef, Worker};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Echo { text: String }
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Add { a: f64, b: f64 }
//!
//! #[derive(serde::Serialize, schemars::JsonSchema)]
//! struct Sum { sum: f64 }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let worker = Worker::new("demo")
//!     .tool(ToolDef::typed("echo", |_ctx, a: Echo| async move { Ok(a.text) })
//!         .description("Returns its input"))
//!     // `outputSchema` comes from `Sum`.
//!     .tool(ToolDef::typed("add", |_ctx, a: Add| async move { Ok(Json(Sum { sum: a.a + a.b })) }));
//! let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
//! worker.run(nats, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod announce;
mod call_error;
mod cancels;
mod catalogue;
mod clock;
mod completion;
mod config;
mod context;
mod decide;
mod error;
mod job;
mod metrics;
mod mrtr;
mod output;
mod prompt;
mod registry;
mod resource;
mod runner;
mod schema;
mod service;
mod tool;
mod worker;

pub use announce::{Announce, AnnounceError};
pub use bus_schema;
/// The verified caller a handler reads with [`CallContext::principal`].
pub use bus_schema::principal::Principal;
pub use call_error::{CallError, InputRequired, ProtocolError, ToolError};
pub use catalogue::Catalogue;
pub use config::WorkerConfig;
pub use context::CallContext;
pub use error::WorkerError;
/// The W3C trace context of a call ([`CallContext::trace_context`]).
pub use mcpbus_telemetry::TraceContext;
pub use mrtr::Ask;
pub use output::{IntoToolOutput, Json, ToolOutput};
pub use prompt::PromptDef;
pub use resource::ResourceDef;
pub use tool::{TaskSupport, ToolDef};
pub use worker::Worker;
