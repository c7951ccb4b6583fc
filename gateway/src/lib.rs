//! An mcpbus gateway node.
//!
//! A gateway holds MCP client connections and nothing else: sessions live in JetStream KV,
//! the catalogue is rebuilt from the worker registry, and calls go through the calls work
//! queue. Any node can therefore serve any request, and a node can die without losing state.
//!
//! Folders follow the request path. A `tools/call` arrives at `http/` (the `/mcp` edges of
//! the two protocol lanes), is parsed and served by `core/` (the one method table), finds
//! its pool in `catalog/`, is queued by `route/`, and its replies come back through `route/`
//! (stateless lane) or `stream/` (stored, resumable: session lane and tasks). `session/`
//! and `tasks/` hold session and task records; `app.rs` is what every handler shares.
//! `connection/` serves HTTP connections with their caps and deadlines; `store_limits.rs`
//! puts the size limits on every stream and bucket at start (ADR 0007); `auth/` verifies
//! access tokens (ADR 0009); `presence.rs` lists the gateway for operators in
//! `mcpbus-gateways` (ADR 0021); `probe.rs` is `--probe`, the containers' health check.

pub mod app;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod connection;
pub mod core;
pub mod error;
pub mod http;
mod leader_read;
pub mod metrics;
pub mod policy;
pub mod presence;
pub mod probe;
pub mod quota;
pub mod request_state;
pub mod route;
pub mod server;
pub mod session;
pub mod store_limits;
pub mod stream;
pub mod tasks;

pub use config::Config;

pub use server::run;
