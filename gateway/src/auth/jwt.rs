//! JWT access tokens (RFC 9068): the checks, in the order that refuses cheapest first.
//!
//! 1. The header's `alg` is on the allow-list: asymmetric signatures only. `none` and the
//!    HMAC family are refused before any key is looked at, so a public key can never be
//!    used as an HMAC secret (the classic algorithm-confusion attack).
//! 2. The unverified `iss` must be a configured issuer: it picks whose keys to use.
//! 3. The signature, against that issuer's key with the token's `kid` (keys fetched again
//!    on an unknown `kid`, rate-limited in `jwks.rs`).
//! 4. `iss`, `aud` (RFC 8707: this gateway's resource URI), `exp` and `nbf` with leeway,
//!    and `sub`, by `jsonwebtoken` once the signature holds.

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::error::AuthError;
use super::jwks::{IssuerKeys, Key, KeyKind};

/// Signature algorithms accepted: RSA (PKCS#1 and PSS), ECDSA and EdDSA.
pub const ALLOWED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Most keys tried for a token without `kid`, so a large key set cannot make one token cost
/// many signature checks.
const MAX_KEYS_WITHOUT_KID: usize = 4;

/// Whether a token has the shape of a JWS (three base64url parts); anything else is opaque.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let header = parts.next().unwrap_or("");
    parts.clone().count() == 2 && header.starts_with("eyJ")
}

/// The parts read before the signature is checked: they only choose how to check it.
pub struct Unverified {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub issuer: String,
}

/// Reads the header's `alg` and `kid` and the payload's `iss`, refusing what no key could
/// make valid.
pub fn peek(token: &str) -> Result<Unverified, AuthError> {
    let mut parts = token.split('.');
    let (header, payload) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let header = decode_json(header).ok_or_else(|| AuthError::invalid("malformed JWT header"))?;
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = alg_name
        .parse::<Algorithm>()
        .ok()
        .filter(|a| ALLOWED_ALGORITHMS.contains(a))
        .ok_or_else(|| {
            AuthError::invalid(format!(
                "signature algorithm {alg_name:?} is not accepted (asymmetric only)"
            ))
        })?;
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    let payload =
        decode_json(payload).ok_or_else(|| AuthError::invalid("malformed JWT payload"))?;
    let issuer = payload
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError::invalid("the token has no iss"))?
        .to_owned();
    Ok(Unverified { alg, kid, issuer })
}

fn decode_json(part: &str) -> Option<Map<String, Value>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What a token must satisfy besides its signature.
pub struct Expectations<'a> {
    pub audience: &'a str,
    pub leeway_secs: u64,
}

/// Checks the signature with the issuer's keys, then the claims; returns the payload.
pub async fn verify(
    token: &str,
    head: &Unverified,
    keys: &IssuerKeys,
    expect: &Expectations<'_>,
) -> Result<Map<String, Value>, AuthError> {
    let mut held = keys.current();
    if candidates(&held, head).is_empty() {
        // An unknown kid: perhaps the issuer rotated its keys since we fetched them.
        held = keys.refresh().await?;
    }
    let found = candidates(&held, head);
    if found.is_empty() {
        return Err(AuthError::invalid(match &head.kid {
            Some(kid) => format!("no signing key {kid:?} at the issuer"),
            None => "no signing key for the token's algorithm at the issuer".into(),
        }));
    }
    let mut validation = Validation::new(head.alg);
    validation.set_issuer(&[&head.issuer]);
    validation.set_audience(&[expect.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = expect.leeway_secs;
    validation.validate_nbf = true;
    let mut last = None;
    for key in found.into_iter().take(MAX_KEYS_WITHOUT_KID) {
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) if *e.kind() == ErrorKind::InvalidSignature => last = Some(e),
            Err(e) => return Err(explain(&e)),
        }
    }
    Err(explain(&last.expect("at least one key was tried")))
}

/// The keys that may have signed this token: its `kid` (if any), its algorithm's family,
/// and the algorithm the key pins (if any).
fn candidates<'k>(keys: &'k [Key], head: &Unverified) -> Vec<&'k Key> {
    let kind = KeyKind::of(head.alg);
    keys.iter()
        .filter(|k| Some(k.kind) == kind)
        .filter(|k| k.alg.is_none_or(|a| a == head.alg))
        .filter(|k| head.kid.is_none() || k.kid == head.kid)
        .collect()
}

fn explain(e: &jsonwebtoken::errors::Error) -> AuthError {
    AuthError::invalid(match e.kind() {
        ErrorKind::InvalidSignature => "bad signature".to_owned(),
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidAudience => "the token is not for this resource (aud)".to_owned(),
        ErrorKind::InvalidIssuer => "the token's issuer is not trusted".to_owned(),
        ErrorKind::MissingRequiredClaim(c) => format!("the token has no {c}"),
        other => format!("{other:?}"),
    })
}

#[cfg(test)]
mod props;
