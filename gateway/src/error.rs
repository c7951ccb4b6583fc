//! Why a gateway could not start or keep running. Errors of the request path are per layer:
//! `core::CoreError` (with the stores', the router's and the streams' errors inside), mapped
//! to what a client sees in `http/wire.rs`.

/// Why a gateway could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error(transparent)]
    Connect(#[from] bus_schema::connect::ConnectError),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    Topology(#[from] bus_schema::topology::TopologyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot subscribe to the bus: {0}")]
    Subscribe(#[source] async_nats::Error),
    #[error("cannot set up the requestState key: {0}")]
    RequestStateKey(#[from] crate::request_state::KeySetupError),
    #[error(transparent)]
    Auth(#[from] crate::auth::ConfigError),
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}
