//! The auth flags and their environment variables, flattened into the gateway's command
//! line (`cli.rs`) and parsed once into an [`AuthConfig`].

use reqwest::Url;

use super::config::{AuthConfig, AuthSettings, ConfigError};

/// OAuth resource server settings (ADR 0009). Without any of them the gateway serves
/// without tokens, which it allows only on a loopback `--listen`.
#[derive(clap::Args, Debug, Default)]
pub struct AuthArgs {
    /// `none` runs without access tokens on purpose (required to listen beyond loopback
    /// without --auth-issuer); `oauth` is implied by --auth-issuer.
    #[arg(long = "auth", env = "MCPBUS_AUTH", value_name = "none|oauth")]
    pub mode: Option<String>,
    /// Authorization server whose tokens are accepted (its exact `iss`); repeatable.
    #[arg(
        long = "auth-issuer",
        env = "MCPBUS_AUTH_ISSUERS",
        value_delimiter = ','
    )]
    pub issuers: Vec<String>,
    /// This gateway's resource URI (RFC 8707), e.g. https://mcp.example.com/mcp: the `aud`
    /// every token must carry.
    #[arg(long = "auth-audience", env = "MCPBUS_AUTH_AUDIENCE")]
    pub audience: Option<String>,
    /// JWKS URL for verifying JWTs (default: discovered from the issuer's metadata).
    #[arg(long = "auth-jwks-url", env = "MCPBUS_AUTH_JWKS_URL")]
    pub jwks_url: Option<Url>,
    /// RFC 7662 introspection endpoint for opaque tokens (default: from the first issuer's
    /// metadata, when a client id is given).
    #[arg(long = "auth-introspection-url", env = "MCPBUS_AUTH_INTROSPECTION_URL")]
    pub introspection_url: Option<Url>,
    /// Client id the gateway authenticates with at the introspection endpoint.
    #[arg(
        long = "auth-introspection-client-id",
        env = "MCPBUS_AUTH_INTROSPECTION_CLIENT_ID"
    )]
    pub introspection_client_id: Option<String>,
    /// Its secret (prefer the environment variable: flags show in `ps`).
    #[arg(
        long = "auth-introspection-client-secret",
        env = "MCPBUS_AUTH_INTROSPECTION_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub introspection_client_secret: Option<String>,
    /// Scope every MCP request needs (403 insufficient_scope otherwise); repeatable.
    #[arg(
        long = "auth-required-scope",
        env = "MCPBUS_AUTH_REQUIRED_SCOPES",
        value_delimiter = ','
    )]
    pub required_scopes: Vec<String>,
    /// Token claim copied into the principal workers see (e.g. groups); repeatable.
    #[arg(long = "auth-claim", env = "MCPBUS_AUTH_CLAIMS", value_delimiter = ',')]
    pub claims: Vec<String>,
    /// Seconds of clock skew allowed on exp/nbf [default: 30, at most 300].
    #[arg(
        long = "auth-clock-leeway-secs",
        env = "MCPBUS_AUTH_CLOCK_LEEWAY_SECS",
        value_parser = clap::value_parser!(u64).range(0..=300)
    )]
    pub leeway_secs: Option<u64>,
}

impl AuthArgs {
    pub fn into_config(self) -> Result<AuthConfig, ConfigError> {
        let oauth_flags = !self.issuers.is_empty() || self.audience.is_some();
        match self.mode.as_deref() {
            Some("none") if oauth_flags => return Err(ConfigError::Conflict),
            Some("none") => return Ok(AuthConfig::Disabled),
            Some("oauth") | None => {}
            Some(other) => return Err(ConfigError::Mode(other.to_owned())),
        }
        if !oauth_flags {
            return match self.mode {
                Some(_) => Err(ConfigError::NoIssuer),
                None => Ok(AuthConfig::Unset),
            };
        }
        let audience = self.audience.ok_or(ConfigError::NoAudience)?;
        let mut s = AuthSettings::new(self.issuers, audience);
        s.jwks_url = self.jwks_url;
        s.introspection_url = self.introspection_url;
        s.introspection_client_id = self.introspection_client_id;
        s.introspection_client_secret = self.introspection_client_secret;
        s.required_scopes = self.required_scopes;
        s.claims = self.claims;
        if let Some(v) = self.leeway_secs {
            s.leeway = std::time::Duration::from_secs(v);
        }
        s.validate()?;
        Ok(AuthConfig::OAuth(Box::new(s)))
    }
}
