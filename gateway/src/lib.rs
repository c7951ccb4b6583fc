//! An mcpbus gateway node.
//!
//! A gateway holds MCP client connections and nothing else: sessions live in JetStream KV,
//! the catalogue is rebuilt from the worker registry, and calls go through the calls work
//! queue. Any node can therefore serve any request, and a node can die without losing state.
//!
//! Folders follow the request path: `http/` (the `/mcp` endpoint and its two protocol lanes),
//! `session/` (session-lane state), `catalog/` (what workers serve), `route/` (calls to
//! workers and their replies).

pub mod catalog;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod request_state;
pub mod route;
pub mod server;
pub mod session;
pub mod stream;
pub mod tasks;

pub use config::Config;
pub use server::run;
