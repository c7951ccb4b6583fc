//! The `mcpbus-worker` binary's code: the demo tools, the conformance fixtures, bridges to
//! existing MCP servers, and the command line that picks one. A library only so that the
//! benchmark (`tests/src/bin/bench`) can run the demo tools in process; tool authors depend
//! on `mcpbus-worker-sdk` instead.

mod bridge;
mod cli;
pub mod conformance;
pub mod demo;
pub mod kit;
mod stdio_server;

pub use cli::main;
