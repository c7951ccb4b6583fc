//! The NATS connection flags, defined once and flattened into both binaries' command lines
//! (`#[command(flatten)] nats: NatsArgs`). Every flag has its environment variable; the two
//! secrets themselves (password, token) are read only from the environment or a file, never
//! from a flag, whose value would show in `ps`.

use std::fmt;
use std::path::PathBuf;

use super::{NatsOptions, NatsSettings, OptionsError, Secret, Setting, DEFAULT_URL};

/// How this process reaches NATS. Names and variables: [`Setting`].
#[derive(clap::Args, Clone)]
pub struct NatsArgs {
    /// NATS server URLs, comma-separated: seeds tried in turn (the rest of a cluster is
    /// learnt from them). Credentials in a URL (user:password@, token@) still work; prefer
    /// the options below.
    #[arg(
        long = "nats",
        env = "MCPBUS_NATS_URL",
        default_value = DEFAULT_URL,
        hide_env_values = true,
        global = true
    )]
    pub servers: String,
    /// NATS credentials file (.creds: user JWT and nkey seed).
    #[arg(long, env = "MCPBUS_NATS_CREDS", global = true)]
    pub nats_creds: Option<PathBuf>,
    /// File holding a user nkey seed (SU...).
    #[arg(long, env = "MCPBUS_NATS_NKEY", global = true)]
    pub nats_nkey: Option<PathBuf>,
    /// User name; the password comes from MCPBUS_NATS_PASSWORD or --nats-password-file.
    #[arg(long, env = "MCPBUS_NATS_USER", global = true)]
    pub nats_user: Option<String>,
    /// File holding the password of --nats-user (a final newline is ignored).
    #[arg(long, env = "MCPBUS_NATS_PASSWORD_FILE", global = true)]
    pub nats_password_file: Option<PathBuf>,
    /// File holding an authentication token (or set MCPBUS_NATS_TOKEN).
    #[arg(long, env = "MCPBUS_NATS_TOKEN_FILE", global = true)]
    pub nats_token_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust for the server's certificate, instead of the system's;
    /// requires TLS.
    #[arg(long, env = "MCPBUS_NATS_TLS_CA", global = true)]
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for servers that verify clients; needs --nats-tls-key.
    #[arg(long, env = "MCPBUS_NATS_TLS_CERT", global = true)]
    pub nats_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --nats-tls-cert.
    #[arg(long, env = "MCPBUS_NATS_TLS_KEY", global = true)]
    pub nats_tls_key: Option<PathBuf>,
    /// TLS handshake before the server's INFO, for servers configured with
    /// `handshake_first` (nats-server 2.10.4 and later).
    #[arg(long, env = "MCPBUS_NATS_TLS_FIRST", global = true)]
    pub nats_tls_first: bool,
}

impl NatsArgs {
    /// Checks the flags, with the password and token from this process's environment.
    pub fn into_options(self) -> Result<NatsOptions, OptionsError> {
        self.into_options_with(|name| std::env::var(name).ok())
    }

    /// Like [`NatsArgs::into_options`], with the environment as given (for tests). An empty
    /// variable counts as unset, as clap counts it for the flags.
    pub fn into_options_with(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<NatsOptions, OptionsError> {
        let secret = |setting: Setting| {
            env(setting.env())
                .filter(|v| !v.is_empty())
                .map(Secret::new)
        };
        NatsSettings {
            servers: self.servers,
            creds: self.nats_creds,
            nkey: self.nats_nkey,
            user: self.nats_user,
            password: secret(Setting::Password),
            password_file: self.nats_password_file,
            token: secret(Setting::Token),
            token_file: self.nats_token_file,
            tls_ca: self.nats_tls_ca,
            tls_cert: self.nats_tls_cert,
            tls_key: self.nats_tls_key,
            tls_first: self.nats_tls_first,
        }
        .resolve()
    }
}

/// The URLs only as shown in messages: they may carry credentials.
impl fmt::Debug for NatsArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.servers.split(',').map(super::redact_url).collect();
        f.debug_struct("NatsArgs")
            .field("servers", &shown.join(","))
            .field("nats_creds", &self.nats_creds)
            .field("nats_nkey", &self.nats_nkey)
            .field("nats_user", &self.nats_user)
            .field("nats_password_file", &self.nats_password_file)
            .field("nats_token_file", &self.nats_token_file)
            .field("nats_tls_ca", &self.nats_tls_ca)
            .field("nats_tls_cert", &self.nats_tls_cert)
            .field("nats_tls_key", &self.nats_tls_key)
            .field("nats_tls_first", &self.nats_tls_first)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        nats: NatsArgs,
    }

    #[test]
    fn every_setting_has_its_flag_and_variable() {
        let cmd = Cli::command();
        for setting in Setting::ALL {
            let Some(flag) = setting.flag() else {
                let named = cmd
                    .get_arguments()
                    .any(|a| a.get_env().is_some_and(|e| e == setting.env()));
                assert!(!named, "{setting} is a secret: no flag may read it");
                continue;
            };
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .unwrap_or_else(|| panic!("no --{flag}"));
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(setting.env()));
        }
    }

    #[test]
    fn secrets_come_from_the_environment_and_stay_out_of_debug() {
        let cli = Cli::parse_from(["t", "--nats", "nats://u:hunter2@h:1", "--nats-user", "u"]);
        assert!(!format!("{cli:?}").contains("hunter2"));
        let err = cli.nats.clone().into_options_with(|_| None).unwrap_err();
        // Credentials in the URL and --nats-user: two ways.
        assert!(matches!(err, OptionsError::ConflictingAuth { .. }), "{err}");
        let cli = Cli::parse_from(["t", "--nats-user", "u"]);
        let env = |name: &str| (name == "MCPBUS_NATS_PASSWORD").then(|| "hunter2".to_owned());
        let options = cli.nats.into_options_with(env).unwrap();
        assert!(!format!("{options:?}").contains("hunter2"));
    }
}
