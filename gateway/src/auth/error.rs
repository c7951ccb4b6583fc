//! Why a token was not accepted. Kept apart from HTTP: `http/auth.rs` maps each kind, once,
//! to a status and a `WWW-Authenticate` challenge.

/// Why a request's token did not yield a principal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer` header: the client should discover how to get a token.
    #[error("an access token is required (Authorization: Bearer)")]
    Missing,
    /// A token was sent but is not valid here. The text says why, for the client's
    /// developer; it never echoes the token.
    #[error("invalid access token: {0}")]
    Invalid(String),
    /// The token is valid but lacks scopes every request needs.
    #[error("insufficient scope: the token lacks {}", .missing.join(" "))]
    InsufficientScope { missing: Vec<String> },
    /// The authorization server could not be asked (keys, metadata or introspection): the
    /// token may well be fine, so this is not the client's fault.
    #[error("cannot verify the token now: {0}")]
    Unavailable(#[from] FetchError),
}

impl AuthError {
    pub(crate) fn invalid(why: impl Into<String>) -> Self {
        AuthError::Invalid(why.into())
    }

    /// A fixed label for metrics and logs (never client input).
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Invalid(_) => "invalid",
            AuthError::InsufficientScope { .. } => "insufficient_scope",
            AuthError::Unavailable(_) => "unavailable",
        }
    }
}

/// Why a document could not be fetched from an authorization server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url} answered invalid JSON: {source}")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url}: {why}")]
    Document { url: String, why: String },
    /// Fetching is rate-limited per issuer and the last attempt failed.
    #[error("{0}: the last fetch failed; retrying later")]
    Backoff(String),
}
