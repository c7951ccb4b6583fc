//! The mcpbus wire contract.
//!
//! This crate is the only place that spells a NATS subject, a header name, a stream or KV
//! bucket definition, or the shape of a message that crosses the bus. Gateways and workers
//! (in Rust) depend on it; workers in other languages follow `PROTOCOL.md`, which documents
//! exactly what is defined here.
//!
//! It may touch NATS only to declare or look up the streams and buckets it defines
//! ([`topology`]), and to say how every process retries a store whose leader is moving
//! ([`failover`]); it holds no runtime state.

pub mod client_request_id;
pub mod connect;
mod digest;
pub mod event_id;
pub mod failover;
pub mod headers;
pub mod limits;
pub mod mcp;
pub mod messages;
pub mod names;
pub mod permissions;
pub mod principal;
pub mod process;
pub mod refusal;
pub mod schema;
#[cfg(any(test, feature = "strategies"))]
pub mod strategies;
pub mod subjects;
pub mod topology;
pub mod uri_template;

/// Version of the worker protocol carried in every message body (`"protocol": 2`) and in the
/// [`headers::PROTOCOL`] header. A receiver rejects a message whose major version it does not
/// know, rather than guessing; additive changes (new optional fields) keep the number.
pub const PROTOCOL_VERSION: u32 = 2;
