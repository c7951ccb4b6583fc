//! The one entry point: a bearer token in, a principal (or why not) out.

use std::collections::HashMap;
use std::sync::Arc;

use bus_schema::principal::Principal;
use tokio::sync::OnceCell;

use super::claims;
use super::config::AuthSettings;
use super::discovery;
use super::error::{AuthError, FetchError};
use super::fetch::Fetcher;
use super::introspection::Introspector;
use super::jwks::IssuerKeys;
use super::jwt;
use super::metadata::ResourceMetadata;

/// Verifies access tokens for this gateway. Shared by every request; holds only caches.
pub struct Verifier {
    settings: AuthSettings,
    /// Keys per configured issuer, by the issuer string a token's `iss` must equal.
    issuers: HashMap<String, Arc<IssuerKeys>>,
    /// Set up on the first opaque token (its endpoint may have to be discovered).
    introspector: OnceCell<Option<Introspector>>,
    /// When discovering the introspection endpoint last failed: retried at most once per
    /// `refresh_min_interval`, so a stream of opaque tokens does not hammer the issuer.
    discovery_failed: std::sync::Mutex<Option<std::time::Instant>>,
    fetcher: Fetcher,
    metadata: ResourceMetadata,
}

impl Verifier {
    pub fn new(settings: AuthSettings) -> Self {
        let fetcher = Fetcher::new();
        let issuers = settings
            .issuers
            .iter()
            .map(|iss| {
                let keys = IssuerKeys::new(
                    iss.clone(),
                    settings.jwks_url.clone(),
                    fetcher.clone(),
                    settings.refresh_min_interval,
                );
                (iss.clone(), Arc::new(keys))
            })
            .collect();
        Self {
            metadata: ResourceMetadata::new(&settings),
            settings,
            issuers,
            introspector: OnceCell::new(),
            discovery_failed: std::sync::Mutex::new(None),
            fetcher,
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    pub fn metadata(&self) -> &ResourceMetadata {
        &self.metadata
    }

    /// Fetches every issuer's keys once, so the first requests do not wait for them. A
    /// failure is logged; requests retry (rate-limited).
    pub async fn warm_up(&self) {
        for keys in self.issuers.values() {
            let _ = keys.refresh().await;
        }
    }

    /// The principal a token names, if it is valid here and carries the required scopes.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let principal = if jwt::looks_like_jwt(token) {
            self.verify_jwt(token).await?
        } else {
            match self.introspector().await? {
                Some(i) => i.introspect(token).await?,
                None => {
                    return Err(AuthError::invalid(
                        "not a JWT, and opaque tokens are not accepted here (no introspection)",
                    ))
                }
            }
        };
        let missing: Vec<String> = self
            .settings
            .required_scopes
            .iter()
            .filter(|s| !principal.has_scope(s))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(principal)
        } else {
            Err(AuthError::InsufficientScope { missing })
        }
    }

    async fn verify_jwt(&self, token: &str) -> Result<Principal, AuthError> {
        let head = jwt::peek(token)?;
        let keys = self.issuers.get(&head.issuer).ok_or_else(|| {
            AuthError::invalid(format!("issuer {:?} is not trusted here", head.issuer))
        })?;
        let expect = jwt::Expectations {
            audience: &self.settings.audience,
            leeway_secs: self.settings.leeway.as_secs(),
        };
        let payload = jwt::verify(token, &head, keys, &expect).await?;
        claims::principal(&head.issuer, &payload, &self.settings.claims, None)
    }

    /// The introspection endpoint: configured, else the first issuer's metadata names it.
    /// Only with client credentials for it (RFC 7662 requires the caller to authenticate).
    /// A failed discovery is the authorization server being unavailable (503), not the
    /// token being invalid, and is retried at most once per `refresh_min_interval`.
    async fn introspector(&self) -> Result<Option<&Introspector>, FetchError> {
        let s = &self.settings;
        let recently_failed = self
            .discovery_failed
            .lock()
            .expect("discovery lock")
            .is_some_and(|at| at.elapsed() < s.refresh_min_interval);
        if recently_failed && self.introspector.get().is_none() {
            return Err(FetchError::Backoff(s.issuers[0].clone()));
        }
        let found = self
            .introspector
            .get_or_try_init(|| async {
                let Some(client_id) = s.introspection_client_id.clone() else {
                    return Ok(None);
                };
                let url = match &s.introspection_url {
                    Some(url) => url.clone(),
                    None => discovery::discover(&self.fetcher, &s.issuers[0])
                        .await?
                        .introspection_endpoint
                        .ok_or_else(|| FetchError::Document {
                            url: s.issuers[0].clone(),
                            why: "the issuer's metadata names no introspection_endpoint".into(),
                        })?,
                };
                Ok::<_, FetchError>(Some(Introspector::new(
                    url,
                    client_id,
                    s.introspection_client_secret.clone(),
                    self.fetcher.clone(),
                    s.issuers.clone(),
                    s.audience.clone(),
                    s.claims.clone(),
                    (
                        s.leeway,
                        s.introspection_cache_ttl,
                        s.introspection_cache_entries,
                    ),
                )))
            })
            .await;
        match found {
            Ok(introspector) => Ok(introspector.as_ref()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot discover the introspection endpoint");
                *self.discovery_failed.lock().expect("discovery lock") =
                    Some(std::time::Instant::now());
                Err(e)
            }
        }
    }
}
