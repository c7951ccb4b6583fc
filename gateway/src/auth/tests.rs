//! The verifier against a hand-written authorization server: ES256 keys made with ring,
//! served as JWKS by a small axum app on a loopback port, which counts its key fetches.
//! (The integration tests use a real provider; this one checks what a provider would not
//! send: `alg: none`, HMAC, unknown kids in a flood, rotated keys.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use super::error::FetchError;
use super::{AuthError, AuthSettings, Verifier};

const AUDIENCE: &str = "https://mcp.example.test/mcp";

/// An ES256 signing key and its public JWK.
struct SigningKey {
    kid: String,
    der: Vec<u8>,
    jwk: Value,
}

impl SigningKey {
    fn new(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        Self {
            kid: kid.into(),
            der: pkcs8.as_ref().to_vec(),
            jwk: json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.der)).unwrap()
    }
}

/// A hand-written issuer: OIDC discovery and a JWKS whose keys the test can replace.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

async fn issuer(keys: Vec<Value>) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (k, f, u) = (keys.clone(), fetches.clone(), url.clone());
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let u = u.clone();
                async move { Json(json!({"issuer": u, "jwks_uri": format!("{u}/jwks")})) }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                f.fetch_add(1, Ordering::SeqCst);
                let keys = k.lock().unwrap().clone();
                async move { Json(json!({ "keys": keys })) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Issuer { url, keys, fetches }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(iss: &str) -> Value {
    json!({"iss": iss, "sub": "alice", "aud": AUDIENCE, "exp": now() + 300,
        "scope": "mcp:tools other", "groups": ["eng"], "email": "a@example.test"})
}

fn verifier(iss: &Issuer, refresh: Duration) -> Verifier {
    let mut s = AuthSettings::new(vec![iss.url.clone()], AUDIENCE.into());
    s.refresh_min_interval = refresh;
    s.required_scopes = vec!["mcp:tools".into()];
    s.claims = vec!["groups".into()];
    Verifier::new(s)
}

fn invalid(r: Result<bus_schema::principal::Principal, AuthError>) -> String {
    match r {
        Err(AuthError::Invalid(why)) => why,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_token_yields_its_principal_with_only_allow_listed_claims() {
    let key = SigningKey::new("k1");
    let iss = issuer(vec![key.jwk.clone()]).await;
    let v = verifier(&iss, Duration::from_secs(10));
    let p = v.verify(&key.sign(&claims(&iss.url))).await.unwrap();
    assert_eq!(
        (p.issuer.as_str(), p.subject.as_str()),
        (iss.url.as_str(), "alice")
    );
    assert_eq!(p.scopes, ["mcp:tools", "other"]);
    assert_eq!(p.claims.keys().collect::<Vec<_>>(), ["groups"]);
}

#[tokio::test]
async fn each_bad_claim_is_refused_with_its_reason() {
    let key = SigningKey::new("k1");
    let iss = issuer(vec![key.jwk.clone()]).await;
    let v = verifier(&iss, Duration::from_secs(10));
    let with = |field: &str, value: Value| {
        let mut c = claims(&iss.url);
        c[field] = value;
        key.sign(&c)
    };
    let cases = [
        (with("aud", json!("https://other.example.test/mcp")), "aud"),
        (with("aud", json!(["https://a.test", AUDIENCE])), ""),
        (with("exp", json!(now() - 120)), "expired"),
        (with("nbf", json!(now() + 120)), "nbf"),
        (
            with("iss", json!("https://evil.example.test")),
            "not trusted",
        ),
    ];
    for (token, reason) in cases {
        match v.verify(&token).await {
            Ok(_) if reason.is_empty() => {}
            r => assert!(invalid(r).contains(reason), "{reason}"),
        }
    }
    let mut c = claims(&iss.url);
    c.as_object_mut().unwrap().remove("sub");
    assert!(invalid(v.verify(&key.sign(&c)).await).contains("sub"));
    // Within the leeway an expired token still passes (clock skew).
    assert!(v.verify(&with("exp", json!(now() - 5))).await.is_ok());
    // Missing scope is its own error (403, not 401).
    let narrow = with("scope", json!("other"));
    assert!(matches!(
        v.verify(&narrow).await,
        Err(AuthError::InsufficientScope { missing }) if missing == ["mcp:tools"]
    ));
}

#[tokio::test]
async fn none_and_hmac_are_refused_before_any_key_is_used() {
    let key = SigningKey::new("k1");
    let iss = issuer(vec![key.jwk.clone()]).await;
    let v = verifier(&iss, Duration::from_secs(10));
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let body = b64(&claims(&iss.url));
    let none = format!("{}.{body}.", b64(&json!({"alg": "none"})));
    assert!(invalid(v.verify(&none).await).contains("\"none\""));
    // HS256 keyed with the public key's bytes: the classic confusion attack.
    let secret = key.jwk["x"].as_str().unwrap().as_bytes().to_vec();
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&iss.url),
        &EncodingKey::from_secret(&secret),
    )
    .unwrap();
    assert!(invalid(v.verify(&hs).await).contains("HS256"));
    assert_eq!(iss.fetches.load(Ordering::SeqCst), 0, "no key was fetched");
}

#[tokio::test]
async fn unknown_kids_refetch_keys_at_most_once_per_interval() {
    let key = SigningKey::new("k1");
    let iss = issuer(vec![key.jwk.clone()]).await;
    let v = verifier(&iss, Duration::from_secs(3600));
    v.verify(&key.sign(&claims(&iss.url))).await.unwrap();
    assert_eq!(iss.fetches.load(Ordering::SeqCst), 1);
    // A flood of made-up kids costs no further fetch within the interval.
    for i in 0..50 {
        let stranger = SigningKey::new(&format!("made-up-{i}"));
        let why = invalid(v.verify(&stranger.sign(&claims(&iss.url))).await);
        assert!(why.contains("no signing key"), "{why}");
    }
    assert_eq!(iss.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_on_its_first_token() {
    let old = SigningKey::new("old");
    let iss = issuer(vec![old.jwk.clone()]).await;
    let v = verifier(&iss, Duration::ZERO);
    v.verify(&old.sign(&claims(&iss.url))).await.unwrap();
    let new = SigningKey::new("new");
    *iss.keys.lock().unwrap() = vec![new.jwk.clone()];
    v.verify(&new.sign(&claims(&iss.url))).await.unwrap();
    // A signature by another key under a known kid is a bad signature, not a refetch loop.
    let forged = SigningKey {
        kid: "new".into(),
        ..SigningKey::new("x")
    };
    assert!(invalid(v.verify(&forged.sign(&claims(&iss.url))).await).contains("bad signature"));
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_invalid() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let key = SigningKey::new("k1");
    let mut s = AuthSettings::new(vec![url.clone()], AUDIENCE.into());
    s.refresh_min_interval = Duration::ZERO;
    let v = Verifier::new(s);
    assert!(matches!(
        v.verify(&key.sign(&claims(&url))).await,
        Err(AuthError::Unavailable(_))
    ));
}

#[tokio::test]
async fn an_undiscoverable_introspection_endpoint_is_unavailable_and_not_retried_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut s = AuthSettings::new(vec![url], AUDIENCE.into());
    s.introspection_client_id = Some("gateway".into());
    s.refresh_min_interval = Duration::from_secs(60);
    let v = Verifier::new(s);
    // An opaque token while the issuer cannot be asked where to introspect: the server is
    // unavailable (503), the token is not invalid (401, which makes clients drop it).
    let first = v.verify("opaque-token").await;
    assert!(matches!(first, Err(AuthError::Unavailable(_))), "{first:?}");
    // The next one does not ask again within the interval.
    let second = v.verify("another-opaque-token").await;
    assert!(
        matches!(second, Err(AuthError::Unavailable(FetchError::Backoff(_)))),
        "{second:?}"
    );
}
