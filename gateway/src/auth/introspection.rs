//! Opaque access tokens: RFC 7662 introspection at the authorization server, with answers
//! cached by the token's SHA-256 (never the token itself) until the token expires, at most
//! `ttl`, in a bounded number of entries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bus_schema::principal::Principal;
use reqwest::Url;
use serde_json::Value;

use super::claims;
use super::error::AuthError;
use super::fetch::Fetcher;

/// How long a refusal ("not active") is reused: short, so a token that becomes active is not
/// refused for long, but a client retrying a bad token does not reach the server each time.
const NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// What the introspector checks an answer against.
pub struct Introspector {
    pub url: Url,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub fetcher: Fetcher,
    pub issuers: Vec<String>,
    pub audience: String,
    pub allowed_claims: Vec<String>,
    pub leeway: Duration,
    pub ttl: Duration,
    pub max_entries: usize,
    cache: Mutex<HashMap<[u8; 32], Entry>>,
}

struct Entry {
    answer: Result<Principal, String>,
    until: Instant,
}

impl Introspector {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        url: Url,
        client_id: String,
        client_secret: Option<String>,
        fetcher: Fetcher,
        issuers: Vec<String>,
        audience: String,
        allowed_claims: Vec<String>,
        (leeway, ttl, max_entries): (Duration, Duration, usize),
    ) -> Self {
        Self {
            url,
            client_id,
            client_secret,
            fetcher,
            issuers,
            audience,
            allowed_claims,
            leeway,
            ttl,
            max_entries,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn introspect(&self, token: &str) -> Result<Principal, AuthError> {
        let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes");
        if let Some(answer) = self.cached(&key) {
            return answer.map_err(AuthError::Invalid);
        }
        let doc = self
            .fetcher
            .post_form(
                &self.url,
                &[("token", token), ("token_type_hint", "access_token")],
                Some((&self.client_id, self.client_secret.as_deref())),
            )
            .await?;
        let (answer, until) = self.judge(&doc);
        self.store(key, &answer, until);
        answer.map_err(AuthError::Invalid)
    }

    /// Reads an introspection answer: the principal and how long to reuse it, or why not.
    fn judge(&self, doc: &Value) -> (Result<Principal, String>, Instant) {
        let refuse = |why: &str| (Err(why.to_owned()), Instant::now() + NEGATIVE_TTL);
        let Some(c) = doc.as_object() else {
            return refuse("the introspection answer is not an object");
        };
        if c.get("active") != Some(&Value::Bool(true)) {
            return refuse("the token is not active");
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let exp = c.get("exp").and_then(Value::as_u64);
        if exp.is_some_and(|e| e + self.leeway.as_secs() < now) {
            return refuse("the token has expired");
        }
        if c.get("nbf")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > now + self.leeway.as_secs())
        {
            return refuse("the token is not valid yet (nbf)");
        }
        // RFC 8707: a token must name this resource. One that names none could have been
        // minted for any resource server of the same authorization server.
        match c.get("aud") {
            Some(aud) if claims::audience_matches(aud, &self.audience) => {}
            Some(_) => return refuse("the token is not for this resource (aud)"),
            None => return refuse("the token names no audience (aud)"),
        }
        let issuer = match c.get("iss").and_then(Value::as_str) {
            Some(iss) if self.issuers.iter().any(|i| i == iss) => iss.to_owned(),
            Some(_) => return refuse("the token's issuer is not trusted"),
            // The endpoint we asked speaks for the first configured issuer.
            None => self.issuers[0].clone(),
        };
        let until = Instant::now()
            + exp
                .map(|e| Duration::from_secs(e.saturating_sub(now)))
                .unwrap_or(self.ttl)
                .min(self.ttl);
        match claims::principal(&issuer, c, &self.allowed_claims, Some("client_id")) {
            Ok(p) => (Ok(p), until),
            Err(e) => refuse(&e.to_string()),
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Result<Principal, String>> {
        let cache = self.cache.lock().expect("cache lock");
        cache
            .get(key)
            .filter(|e| e.until > Instant::now())
            .map(|e| e.answer.clone())
    }

    fn store(&self, key: [u8; 32], answer: &Result<Principal, String>, until: Instant) {
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= self.max_entries {
            let now = Instant::now();
            cache.retain(|_, e| e.until > now);
        }
        if cache.len() >= self.max_entries {
            // Still full of live answers: skip caching this one rather than grow; the next
            // request for it asks the server again.
            return;
        }
        cache.insert(
            key,
            Entry {
                answer: answer.clone(),
                until,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn introspector(max_entries: usize) -> Introspector {
        Introspector::new(
            "http://127.0.0.1:9/introspect".parse().unwrap(),
            "gateway".into(),
            None,
            Fetcher::new(),
            vec!["https://as.example".into()],
            "https://mcp.example/mcp".into(),
            vec![],
            (
                Duration::from_secs(30),
                Duration::from_secs(60),
                max_entries,
            ),
        )
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn answers_are_checked_like_jwt_claims() {
        let i = introspector(10);
        let ok = json!({"active": true, "client_id": "svc", "scope": "a b",
            "aud": "https://mcp.example/mcp", "iss": "https://as.example", "exp": now() + 600});
        let (p, until) = i.judge(&ok);
        let p = p.unwrap();
        assert_eq!((p.subject.as_str(), p.scopes.len()), ("client_id:svc", 2));
        // Reused at most the cap (60 s), though the token lives 10 minutes.
        assert!(until <= Instant::now() + Duration::from_secs(60));
        for (field, value, why) in [
            ("active", json!(false), "not active"),
            ("aud", json!("https://other.example/mcp"), "aud"),
            ("iss", json!("https://evil.example"), "issuer"),
            ("exp", json!(now() - 120), "expired"),
        ] {
            let mut doc = ok.clone();
            doc[field] = value;
            let (answer, until) = i.judge(&doc);
            assert!(answer.unwrap_err().contains(why), "{field}");
            assert!(until <= Instant::now() + NEGATIVE_TTL);
        }
        // A token that names no audience could be for any resource server.
        let mut no_aud = ok.clone();
        no_aud.as_object_mut().unwrap().remove("aud");
        assert!(i.judge(&no_aud).0.unwrap_err().contains("audience"));
    }

    #[test]
    fn the_cache_is_keyed_by_hash_and_bounded() {
        let i = introspector(2);
        let p = i
            .judge(&json!({"active": true, "sub": "u", "aud": "https://mcp.example/mcp"}))
            .0;
        let later = Instant::now() + Duration::from_secs(60);
        for k in 0..5u8 {
            i.store([k; 32], &p, later);
        }
        assert_eq!(
            i.cache.lock().unwrap().len(),
            2,
            "full of live answers: no growth"
        );
        assert!(i.cached(&[0; 32]).is_some());
        assert!(i.cached(&[4; 32]).is_none());
        // Expired entries make room.
        i.store([7; 32], &p, Instant::now());
        let mut cache = i.cache.lock().unwrap();
        cache.values_mut().for_each(|e| e.until = Instant::now());
        drop(cache);
        i.store([9; 32], &p, later);
        assert!(i.cached(&[9; 32]).is_some());
    }
}
