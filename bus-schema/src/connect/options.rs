//! [`NatsOptions`]: which servers, as whom, over what TLS, validated once (`settings.rs`) and
//! handed to [`super::connect`]. Secrets inside are never shown: `Debug` names the kind of
//! authentication and the files, not what they hold.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::servers::Servers;
use super::OptionsError;

/// How often every process pings its NATS server (see `connect_options`).
pub const PING_INTERVAL: Duration = Duration::from_secs(2);

/// How long a connection attempt to one server may take before the next seed is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a client takes to leave a server that froze for another seed: the client
/// gives up after its third ping finds two unanswered (async-nats), at most three
/// intervals after the freeze, then may try the frozen server once more before the
/// others (its pool is shuffled). Anyone judging a client by its silence allows this much
/// while a NATS node is missing (the gateway's registry, issue 15).
pub const LEAVE_LOST_SERVER: Duration =
    Duration::from_secs(3 * PING_INTERVAL.as_secs() + CONNECT_TIMEOUT.as_secs());

/// A secret read from a file or the environment. `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the process proves who it is. One way only: the server checks one.
#[derive(Clone, Debug)]
pub(crate) enum Auth {
    /// None, or only a TLS client certificate (which the server may map to a user).
    None,
    /// A `.creds` file's contents: a user JWT and the nkey seed that signs for it.
    Creds(Secret),
    /// A user nkey seed.
    Nkey(Secret),
    UserPassword {
        user: String,
        password: Secret,
    },
    Token(Secret),
}

impl Auth {
    /// What the server is shown, for messages.
    fn kind(&self) -> &'static str {
        match self {
            Auth::None => "a connection without credentials",
            Auth::Creds(_) => "a credentials file",
            Auth::Nkey(_) => "an nkey",
            Auth::UserPassword { .. } => "a user and password",
            Auth::Token(_) => "a token",
        }
    }

    fn secrets(&self) -> Vec<&str> {
        match self {
            Auth::None => vec![],
            Auth::Creds(s) | Auth::Nkey(s) | Auth::Token(s) => vec![s.expose()],
            Auth::UserPassword { password, .. } => vec![password.expose()],
        }
    }
}

/// TLS files (PEM) and mode. TLS is required when any is set.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tls {
    /// CA certificates the server's certificate must chain to; they replace the system's.
    pub(crate) ca: Option<PathBuf>,
    /// Client certificate and its key.
    pub(crate) client: Option<(PathBuf, PathBuf)>,
    /// TLS before the server's INFO (servers with `handshake_first`, 2.10.4 and later).
    pub(crate) first: bool,
}

/// Everything a process needs to connect to the bus. Made from flags and environment with
/// [`super::NatsSettings::resolve`] (or [`NatsOptions::new`] for a URL alone).
#[derive(Clone)]
pub struct NatsOptions {
    pub(crate) servers: Servers,
    pub(crate) auth: Auth,
    pub(crate) tls: Tls,
    /// Prefix of the client's reply subjects. Default `_INBOX`; a role given its own prefix
    /// can be granted subscribe permission on exactly its replies.
    pub(crate) inbox_prefix: Option<String>,
}

impl NatsOptions {
    /// Servers only (comma-separated); credentials in a URL are used as nats.go would.
    pub fn new(servers: &str) -> Result<Self, OptionsError> {
        super::NatsSettings {
            servers: servers.to_owned(),
            ..Default::default()
        }
        .resolve()
    }

    /// Sets the prefix of this client's reply subjects (`ConnectOptions::custom_inbox_prefix`).
    /// Default none: `_INBOX`.
    pub fn with_inbox_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.inbox_prefix = Some(prefix.into());
        self
    }

    pub fn inbox_prefix(&self) -> Option<&str> {
        self.inbox_prefix.as_deref()
    }

    /// The seed servers for messages and logs, userinfo replaced by `***`.
    pub fn servers_shown(&self) -> &str {
        &self.servers.shown
    }

    /// `text` with every secret of these options replaced by `***`: for messages that come
    /// from elsewhere (the client library, the server) and might echo one.
    pub fn scrub(&self, text: &str) -> String {
        self.auth
            .secrets()
            .into_iter()
            .filter(|s| !s.is_empty())
            .fold(text.to_owned(), |t, secret| t.replace(secret, "***"))
    }

    pub(crate) fn connect_options(&self, name: &str) -> Result<async_nats::ConnectOptions, String> {
        let mut o = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(CONNECT_TIMEOUT)
            // A server that freezes (a stalled VM, SIGSTOP) keeps its sockets open, so only
            // unanswered pings tell; the client gives up after two, so a frozen server is
            // left for another seed within ~4–6 s instead of the default's minutes (issue
            // 15, ADR 0031). One small PING per connection every 2 s.
            .ping_interval(PING_INTERVAL)
            .max_reconnects(None);
        o = match &self.auth {
            Auth::None => o,
            // Parsed once already when the options were made; cannot fail here.
            Auth::Creds(creds) => o
                .credentials(creds.expose())
                .map_err(|e| format!("credentials file: {e}"))?,
            Auth::Nkey(seed) => o.nkey(seed.expose().to_owned()),
            Auth::UserPassword { user, password } => {
                o.user_and_password(user.clone(), password.expose().to_owned())
            }
            Auth::Token(token) => o.token(token.expose().to_owned()),
        };
        if let Some(ca) = &self.tls.ca {
            o = o.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.tls.client {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        if self.tls.ca.is_some() || self.tls.client.is_some() {
            // Files given for TLS mean TLS: never fall back to plain text with a server that
            // does not ask for it.
            o = o.require_tls(true);
        }
        if self.tls.first {
            o = o.tls_first();
        }
        if let Some(prefix) = &self.inbox_prefix {
            o = o.custom_inbox_prefix(prefix);
        }
        Ok(o)
    }

    /// How a refused connection is explained: which kind of credentials the server refused.
    pub(crate) fn refused(&self) -> String {
        format!("the server refused {}", self.auth.kind())
    }
}

impl Default for NatsOptions {
    /// A local server, no credentials.
    fn default() -> Self {
        NatsOptions::new(super::DEFAULT_URL).expect("the default URL parses")
    }
}

impl fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsOptions")
            .field("servers", &self.servers.shown)
            .field("auth", &self.auth.kind())
            .field("tls", &self.tls)
            .field("inbox_prefix", &self.inbox_prefix)
            .finish()
    }
}
