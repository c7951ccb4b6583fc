//! The OAuth edge (MCP `basic/authorization`): the bearer token in, the principal out, or
//! the challenge that tells the client how to get a better token. The one place where
//! [`AuthError`] becomes an HTTP status and a `WWW-Authenticate` header.
//!
//! The token is read from `Authorization: Bearer` only (never the query string, which ends
//! up in logs), and goes no further than the verifier.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bus_schema::mcp::code;
use bus_schema::principal::Principal;
use serde_json::Value;
use std::sync::Arc;

use super::jsonrpc::error_response;
use super::wire::McpError;
use crate::app::App;
use crate::auth::{AuthError, Verifier};

/// RFC 9728 §3: the metadata of the host's default resource, and of `/mcp` (the path form
/// clients build from the resource URI).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
pub const METADATA_PATH_MCP: &str = "/.well-known/oauth-protected-resource/mcp";

/// Who is calling: `Ok(None)` when the gateway runs without auth.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Option<Principal>, Response> {
    let Some(verifier) = &app.verifier else {
        return Ok(None);
    };
    let result = match bearer(headers) {
        Some(token) => verifier.verify(token).await,
        None => Err(AuthError::Missing),
    };
    result.map(Some).map_err(|e| {
        tracing::debug!(reason = e.reason(), error = %e, "request refused");
        crate::metrics::METRICS
            .auth_refused
            .with_label_values(&[e.reason()])
            .inc();
        challenge(verifier, &e)
    })
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// 401 for a missing or bad token, 403 for missing scopes, 503 when the authorization
/// server cannot be reached; each with a JSON-RPC error body like every other refusal.
fn challenge(verifier: &Verifier, e: &AuthError) -> Response {
    let metadata = &verifier.metadata().url;
    let required = verifier.settings().required_scopes.join(" ");
    let mut params = Vec::new();
    // RFC 6750 §3: no error code when no token was sent; with one, why it failed.
    let (status, error) = match e {
        AuthError::Missing => (StatusCode::UNAUTHORIZED, None),
        AuthError::Invalid(_) => (StatusCode::UNAUTHORIZED, Some("invalid_token")),
        AuthError::InsufficientScope { .. } => (StatusCode::FORBIDDEN, Some("insufficient_scope")),
        AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    if let Some(error) = error {
        params.push(format!(r#"error="{error}""#));
    }
    // MCP: the scopes the request needs, all in one challenge (2026-07-28 "Scope Selection").
    if !required.is_empty() {
        params.push(format!(r#"scope="{}""#, quotable(&required)));
    }
    params.push(format!(r#"resource_metadata="{}""#, quotable(metadata)));
    if error.is_some() {
        params.push(format!(
            r#"error_description="{}""#,
            quotable(&e.to_string())
        ));
    }
    let message = match e {
        // The reason is for the operator's log, not for the client.
        AuthError::Unavailable(_) => "Service Unavailable: cannot verify access tokens now".into(),
        _ => e.to_string(),
    };
    let code = match e {
        AuthError::Unavailable(_) => code::INTERNAL_ERROR,
        _ => code::INVALID_REQUEST,
    };
    let mut response = error_response(&Value::Null, &McpError::new(status, code, message));
    let headers = response.headers_mut();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    } else {
        let value = format!("Bearer {}", params.join(", "));
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

/// Text safe inside a quoted-string of an auth-param: no quotes, backslashes or controls.
fn quotable(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
        .collect()
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`: 404 without auth, as before.
pub async fn resource_metadata(State(app): State<Arc<App>>) -> Response {
    match &app.verifier {
        Some(v) => axum::Json(v.metadata().document.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bearer_scheme_yields_a_token() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn challenge_text_cannot_break_out_of_its_quotes() {
        assert_eq!(quotable("a\"b\\c\nd"), "abcd");
    }
}
