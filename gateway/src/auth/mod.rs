//! The OAuth 2.1 resource server: who may call `/mcp` (MCP `basic/authorization`, ADR 0009).
//!
//! The edge (`http/auth.rs`) takes the bearer token from the `Authorization` header and asks
//! the [`Verifier`] for the [`Principal`](bus_schema::principal::Principal) it names. A JWT
//! is checked here, against its issuer's published keys (`jwks.rs`, found by `discovery.rs`);
//! an opaque token is asked about at the authorization server (`introspection.rs`). Either way
//! the result is the same principal (`claims.rs`), and the token itself goes no further: it is
//! never stored, logged, published on the bus or forwarded.
//!
//! This module knows nothing of HTTP responses: the edge maps [`AuthError`] to 401/403/503
//! and the `WWW-Authenticate` challenge. It may fetch from the configured authorization
//! servers only (`fetch.rs`, bounded in time and size).

mod args;
mod claims;
mod config;
mod discovery;
mod error;
mod fetch;
mod introspection;
mod jwks;
mod jwt;
mod metadata;
mod verifier;

#[cfg(test)]
mod tests;

pub use args::AuthArgs;
pub use config::{AuthConfig, AuthSettings, ConfigError};
pub use error::AuthError;
pub use metadata::ResourceMetadata;
pub use verifier::Verifier;
