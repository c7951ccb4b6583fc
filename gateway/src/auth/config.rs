//! What the resource server trusts, parsed once from flags (`cli.rs`) and checked at start.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Url;

/// Whether and how `/mcp` requires an access token.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum AuthConfig {
    /// No flag was given: allowed only on a loopback listener (see [`AuthConfig::check_listen`]).
    #[default]
    Unset,
    /// `--auth none`: the operator chose to run without tokens (a trusted network, a proxy in
    /// front that authenticates).
    Disabled,
    /// Tokens are required and verified. Boxed: read once at start, not worth its size in
    /// every `Config`.
    OAuth(Box<AuthSettings>),
}

/// The settings of an OAuth resource server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthSettings {
    /// Authorization servers whose tokens are accepted (`iss`, exact string match as RFC 9068
    /// requires, so kept as given, not normalised as a URL). Listed in the Protected Resource
    /// Metadata so clients know where to go.
    pub issuers: Vec<String>,
    /// This gateway's resource URI (RFC 8707): a token must carry it in `aud`, so a token
    /// minted for another service cannot be replayed here. Also the `resource` of the PRM.
    pub audience: String,
    /// Where the signing keys are, when not discovered from the issuer's metadata.
    pub jwks_url: Option<Url>,
    /// RFC 7662 endpoint for opaque tokens, when not discovered; with its client credentials.
    pub introspection_url: Option<Url>,
    pub introspection_client_id: Option<String>,
    pub introspection_client_secret: Option<String>,
    /// Scopes every MCP request needs (403 `insufficient_scope` otherwise); also advertised
    /// as `scopes_supported` and in challenges, so a client asks for them up front.
    pub required_scopes: Vec<String>,
    /// Claims copied into the principal (e.g. `groups`). An allow-list: workers see only what
    /// the operator chose, never the whole token.
    pub claims: Vec<String>,
    /// Slack for `exp`/`nbf` against clock skew between us and the authorization server.
    /// Default 30 s: NTP keeps real skew far below it, and it extends a stolen token little.
    pub leeway: Duration,
    /// Fewest seconds between two fetches of one issuer's keys (or metadata). An unknown
    /// `kid` triggers a fetch, and anyone can send one: without this bound, a flood of
    /// made-up `kid`s would be a flood on the authorization server. Default 10 s.
    pub refresh_min_interval: Duration,
    /// Longest an introspection answer is reused; also bounded by the token's `exp`. Default
    /// 60 s: a revoked opaque token stops working within a minute.
    pub introspection_cache_ttl: Duration,
    /// Most introspection answers held, so random tokens cannot grow memory. Default 10 000.
    pub introspection_cache_entries: usize,
}

impl AuthSettings {
    pub fn new(issuers: Vec<String>, audience: String) -> Self {
        Self {
            issuers,
            audience,
            jwks_url: None,
            introspection_url: None,
            introspection_client_id: None,
            introspection_client_secret: None,
            required_scopes: Vec::new(),
            claims: Vec::new(),
            leeway: Duration::from_secs(30),
            refresh_min_interval: Duration::from_secs(10),
            introspection_cache_ttl: Duration::from_secs(60),
            introspection_cache_entries: 10_000,
        }
    }

    /// Settings that cannot work are refused at start, not on the first request.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.issuers.is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        let audience =
            Url::parse(&self.audience).map_err(|_| ConfigError::Audience(self.audience.clone()))?;
        if audience.fragment().is_some() || !matches!(audience.scheme(), "https" | "http") {
            return Err(ConfigError::Audience(self.audience.clone()));
        }
        let mut urls = Vec::new();
        for issuer in &self.issuers {
            urls.push(Url::parse(issuer).map_err(|_| ConfigError::Issuer(issuer.clone()))?);
        }
        urls.extend(self.jwks_url.iter().chain(&self.introspection_url).cloned());
        for url in &urls {
            if !secure(url) {
                return Err(ConfigError::Insecure(url.to_string()));
            }
        }
        if self.introspection_url.is_some() && self.introspection_client_id.is_none() {
            return Err(ConfigError::IntrospectionClient);
        }
        // One key set for several issuers would let any of them sign as the others.
        if self.jwks_url.is_some() && self.issuers.len() > 1 {
            return Err(ConfigError::SharedJwks);
        }
        Ok(())
    }
}

impl AuthConfig {
    /// The safe default: a gateway reachable from the network does not serve tools to anyone
    /// without the operator saying so.
    pub fn check_listen(&self, listen: SocketAddr) -> Result<(), ConfigError> {
        match self {
            AuthConfig::Unset if !listen.ip().is_loopback() => {
                Err(ConfigError::Unprotected(listen))
            }
            AuthConfig::OAuth(s) => s.validate(),
            _ => Ok(()),
        }
    }

    pub fn settings(&self) -> Option<&AuthSettings> {
        match self {
            AuthConfig::OAuth(s) => Some(s),
            _ => None,
        }
    }
}

/// Keys or token answers over plain HTTP could be swapped by anyone on the path: https, or
/// http on loopback for development and tests.
pub(super) fn secure(url: &Url) -> bool {
    url.scheme() == "https" || (url.scheme() == "http" && is_loopback_host(url))
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Auth settings a gateway cannot start with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("refusing to serve {0} without authentication: pass --auth-issuer and --auth-audience, or --auth none to run unprotected on purpose")]
    Unprotected(SocketAddr),
    #[error("--auth-audience is required with --auth-issuer (this gateway's resource URI, e.g. https://mcp.example.com/mcp)")]
    NoAudience,
    #[error("--auth-issuer is required with --auth-audience")]
    NoIssuer,
    #[error("--auth-issuer {0:?} is not a URL")]
    Issuer(String),
    #[error("--auth-audience {0:?} must be an absolute http(s) URI without a fragment")]
    Audience(String),
    #[error("{0} must use https (plain http is allowed on loopback only)")]
    Insecure(String),
    #[error("--auth-introspection-client-id is required with --auth-introspection-url")]
    IntrospectionClient,
    #[error("--auth {0:?} is not a mode: use none, or give --auth-issuer and --auth-audience")]
    Mode(String),
    #[error("--auth none cannot be combined with --auth-issuer or --auth-audience")]
    Conflict,
    #[error("--auth-jwks-url names one key set, so it takes exactly one --auth-issuer (with several, each issuer's keys are discovered from its metadata)")]
    SharedJwks,
}
