//! MCP vocabulary shared by gateways and workers: protocol revisions that order, method and
//! capability names, `_meta` keys and JSON-RPC error codes.
//!
//! These are the names the MCP specification defines, typed once here so that no crate
//! compares revisions as strings or defines an error code of its own.

pub mod capability;
pub mod code;
mod log_level;
pub mod meta;
mod method;
pub mod result_type;
mod version;

pub use log_level::LogLevel;
pub use method::{notification, Method};
pub use version::{ProtocolVersion, UnknownVersion};
