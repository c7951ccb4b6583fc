//! The Rust SDK for mcpbus tool workers.
//!
//! A worker declares tools ([`ToolDef`]), then [`Worker::run`] registers them in the
//! cluster's catalogue, keeps the registration alive with heartbeats, and serves calls that
//! gateways queue on JetStream. Several processes running the same [`Worker`] under one pool
//! name share the pool's queue: that is how a pool scales.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mcpbus_worker::{ToolDef, ToolOutput, Worker, WorkerConfig};
//! use bus_schema::names::PoolName;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Echo { text: String }
//!
//! let worker = Worker::new(PoolName::new("demo")?, WorkerConfig::default())
//!     .tool(ToolDef::typed("echo", |_ctx, a: Echo| async move { Ok(ToolOutput::text(a.text)) })
//!         .description("Returns its input"));
//! let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
//! worker.run(nats, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod bridge;
mod catalogue;
pub mod cli;
pub mod conformance;
mod context;
pub mod demo;
mod error;
mod mrtr;
mod registry;
mod resource;
mod runner;
mod tool;
mod worker;

pub use bus_schema;
pub use catalogue::Catalogue;
pub use context::CallContext;
pub use error::WorkerError;
pub use mrtr::Ask;
pub use resource::{PromptDef, ResourceDef};
pub use tool::{TaskSupport, ToolDef, ToolError, ToolOutput};
pub use worker::{Worker, WorkerConfig};
