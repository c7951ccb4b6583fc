//! Why a process cannot reach NATS: settings refused before connecting, or the first
//! connection failing. No message carries a secret: servers are shown with their userinfo
//! replaced by `***`, files by their path, never their contents.

use std::path::PathBuf;

use super::Setting;

/// The connection settings are not usable; said before any connection is tried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    #[error("{} names no NATS server", Setting::Servers)]
    NoServers,
    #[error("{}: {shown} is not a NATS server URL: {reason}", Setting::Servers)]
    BadServer { shown: String, reason: String },
    #[error(
        "{}: the URLs carry different credentials; give them once (e.g. --nats-user and a password)",
        Setting::Servers
    )]
    UrlCredentialsDiffer,
    #[error("{setting}: cannot read {}: {source}", .path.display())]
    Unreadable {
        setting: Setting,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{setting}: {} {reason}", .path.display())]
    Invalid {
        setting: Setting,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "{} cannot be combined. Authenticate one way: --nats-creds, --nats-nkey, --nats-user \
         with a password (MCPBUS_NATS_PASSWORD or --nats-password-file), a token \
         (MCPBUS_NATS_TOKEN or --nats-token-file), or user:password@ in the --nats URL; a TLS \
         client certificate (--nats-tls-cert with --nats-tls-key) goes with any of them",
        .given.join(" and ")
    )]
    ConflictingAuth { given: Vec<String> },
    #[error("{setting} needs {needs}")]
    Needs { setting: Setting, needs: String },
    #[error("{first} and {second} both give it: give one")]
    Twice { first: Setting, second: Setting },
}

/// Why the first connection failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {servers}: {reason}")]
pub struct ConnectError {
    /// The seed servers as given, userinfo replaced by `***`.
    pub servers: String,
    /// What went wrong, with every secret of the options scrubbed out.
    pub reason: String,
}
