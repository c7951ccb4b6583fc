//! One issuer's signing keys: fetched from its JWKS, cached, and fetched again when a token
//! names a key we do not hold (the issuer rotated), at most once per `min_interval`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde_json::Value;

use super::discovery::{self, IssuerMetadata};
use super::error::FetchError;
use super::fetch::Fetcher;

/// A verification key from the set.
pub struct Key {
    pub kid: Option<String>,
    /// The algorithm the JWK pins, if it does: a token signed with another is refused, so a
    /// key published for one algorithm is never used with another.
    pub alg: Option<Algorithm>,
    pub kind: KeyKind,
    pub key: DecodingKey,
}

/// The key families we verify with. Symmetric (`oct`) keys are never loaded: a resource
/// server must not accept tokens it could itself have signed with a published secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ec,
    Okp,
}

impl KeyKind {
    pub fn of(alg: Algorithm) -> Option<Self> {
        use Algorithm::*;
        match alg {
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(KeyKind::Rsa),
            ES256 | ES384 => Some(KeyKind::Ec),
            EdDSA => Some(KeyKind::Okp),
            HS256 | HS384 | HS512 => None,
        }
    }
}

/// An issuer's keys and how to refresh them.
pub struct IssuerKeys {
    issuer: String,
    /// `--auth-jwks-url`, else discovered from the issuer's metadata.
    configured_jwks: Option<Url>,
    fetcher: Fetcher,
    min_interval: Duration,
    /// Read on every token; replaced whole on refresh.
    keys: RwLock<Arc<Vec<Key>>>,
    /// Held while fetching, so concurrent unknown `kid`s cause one fetch, not many.
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    metadata: Option<IssuerMetadata>,
}

impl IssuerKeys {
    pub fn new(
        issuer: String,
        configured_jwks: Option<Url>,
        fetcher: Fetcher,
        min_interval: Duration,
    ) -> Self {
        Self {
            issuer,
            configured_jwks,
            fetcher,
            min_interval,
            keys: RwLock::new(Arc::new(Vec::new())),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }
    }

    /// The keys now held.
    pub fn current(&self) -> Arc<Vec<Key>> {
        self.keys.read().expect("key lock").clone()
    }

    /// Fetches the key set again unless that was tried within `min_interval`. Returns the
    /// keys held afterwards; an error only when no keys are held at all.
    pub async fn refresh(&self) -> Result<Arc<Vec<Key>>, FetchError> {
        let mut state = self.refresh.lock().await;
        let due = state
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.min_interval);
        if due {
            state.last_attempt = Some(Instant::now());
            match self.fetch(&mut state).await {
                Ok(keys) => {
                    state.last_error = None;
                    *self.keys.write().expect("key lock") = Arc::new(keys);
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "cannot fetch signing keys");
                    state.last_error = Some(e.to_string());
                }
            }
        }
        let keys = self.current();
        match (&state.last_error, keys.is_empty()) {
            (Some(e), true) => Err(FetchError::Backoff(e.clone())),
            _ => Ok(keys),
        }
    }

    async fn fetch(&self, state: &mut RefreshState) -> Result<Vec<Key>, FetchError> {
        let url = match &self.configured_jwks {
            Some(url) => url.clone(),
            None => {
                if state.metadata.is_none() {
                    state.metadata = Some(discovery::discover(&self.fetcher, &self.issuer).await?);
                }
                let meta = state.metadata.as_ref().expect("just discovered");
                meta.jwks_uri.clone().ok_or_else(|| FetchError::Document {
                    url: self.issuer.clone(),
                    why: "the metadata has no jwks_uri".into(),
                })?
            }
        };
        let doc = self.fetcher.get_json(&url).await?;
        Ok(parse_set(&doc))
    }
}

/// The usable keys of a JWKS document. A key we cannot use (symmetric, encryption-only, an
/// unknown type) is skipped rather than failing the set: issuers publish such keys too.
pub fn parse_set(doc: &Value) -> Vec<Key> {
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Vec::new();
    };
    keys.iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter_map(|jwk| {
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                return None;
            }
            let kind = match jwk.algorithm {
                AlgorithmParameters::RSA(_) => KeyKind::Rsa,
                AlgorithmParameters::EllipticCurve(_) => KeyKind::Ec,
                AlgorithmParameters::OctetKeyPair(_) => KeyKind::Okp,
                AlgorithmParameters::OctetKey(_) => return None,
            };
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(a) => Some(a.to_string().parse::<Algorithm>().ok()?),
            };
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                kind,
                key,
            })
        })
        .collect()
}
