//! The names of the connection settings: one list for both binaries' flags (`args.rs`), their
//! environment variables, every error that names a setting, and the Python SDK
//! (`contract.py`, held to this list by `tests/python_mirror.rs`).

use std::fmt;

/// One connection setting an operator can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// The seed server URLs.
    Servers,
    /// A NATS `.creds` file (user JWT and nkey seed).
    Creds,
    /// A file holding a user nkey seed.
    Nkey,
    /// The user name of user/password authentication.
    User,
    /// The password itself: environment only.
    Password,
    /// A file holding the password.
    PasswordFile,
    /// The token itself: environment only.
    Token,
    /// A file holding the token.
    TokenFile,
    /// CA certificates (PEM) the server's certificate must chain to.
    TlsCa,
    /// The client certificate (PEM).
    TlsCert,
    /// The client certificate's private key (PEM).
    TlsKey,
    /// TLS before the server's INFO (the server's `handshake_first`).
    TlsFirst,
}

impl Setting {
    pub const ALL: [Setting; 12] = [
        Setting::Servers,
        Setting::Creds,
        Setting::Nkey,
        Setting::User,
        Setting::Password,
        Setting::PasswordFile,
        Setting::Token,
        Setting::TokenFile,
        Setting::TlsCa,
        Setting::TlsCert,
        Setting::TlsKey,
        Setting::TlsFirst,
    ];

    /// The long flag without its dashes, or `None` for a secret read only from the
    /// environment: a flag's value shows in `ps` and shell history.
    pub const fn flag(self) -> Option<&'static str> {
        match self {
            Setting::Servers => Some("nats"),
            Setting::Creds => Some("nats-creds"),
            Setting::Nkey => Some("nats-nkey"),
            Setting::User => Some("nats-user"),
            Setting::Password | Setting::Token => None,
            Setting::PasswordFile => Some("nats-password-file"),
            Setting::TokenFile => Some("nats-token-file"),
            Setting::TlsCa => Some("nats-tls-ca"),
            Setting::TlsCert => Some("nats-tls-cert"),
            Setting::TlsKey => Some("nats-tls-key"),
            Setting::TlsFirst => Some("nats-tls-first"),
        }
    }

    /// The environment variable.
    pub const fn env(self) -> &'static str {
        match self {
            Setting::Servers => "MCPBUS_NATS_URL",
            Setting::Creds => "MCPBUS_NATS_CREDS",
            Setting::Nkey => "MCPBUS_NATS_NKEY",
            Setting::User => "MCPBUS_NATS_USER",
            Setting::Password => "MCPBUS_NATS_PASSWORD",
            Setting::PasswordFile => "MCPBUS_NATS_PASSWORD_FILE",
            Setting::Token => "MCPBUS_NATS_TOKEN",
            Setting::TokenFile => "MCPBUS_NATS_TOKEN_FILE",
            Setting::TlsCa => "MCPBUS_NATS_TLS_CA",
            Setting::TlsCert => "MCPBUS_NATS_TLS_CERT",
            Setting::TlsKey => "MCPBUS_NATS_TLS_KEY",
            Setting::TlsFirst => "MCPBUS_NATS_TLS_FIRST",
        }
    }
}

/// `--nats-creds (MCPBUS_NATS_CREDS)`, or the variable alone for an environment-only secret.
impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.flag() {
            Some(flag) => write!(f, "--{flag} ({})", self.env()),
            None => f.write_str(self.env()),
        }
    }
}
