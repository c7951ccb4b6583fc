//! Sealing the `requestState` of multi round-trip requests (MRTR, 2026-07-28).
//!
//! A worker that needs input from the client answers with an `InputRequiredResult`; its own
//! state for the retry (any JSON, or nothing) is sealed here into an opaque string the client
//! must echo back. The retry may reach any gateway, so the key is shared by the cluster.
//!
//! Token: `<key id>.<base64url payload>.<base64url HMAC-SHA256>`. The payload binds the
//! state to the request it belongs to ([`Binding`]: principal, method, target, pool and the
//! SHA-256 of the arguments) and to an expiry, as the spec recommends against replay. Several keys may be configured for
//! rotation: the first seals, all open.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::{digest, hmac};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Shortest secret accepted: HMAC-SHA256 wants at least 256 bits of key material.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a `requestState` was refused. Every case is the client's problem: -32602.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("requestState is not a state this cluster issued")]
    Malformed,
    #[error("requestState was sealed with a key this cluster no longer holds")]
    UnknownKey,
    #[error("requestState failed its integrity check")]
    Tampered,
    #[error("requestState has expired; send the request again without it")]
    Expired,
    #[error(
        "requestState belongs to a different request (caller, method, tool, prompt or \
         resource, pool or arguments differ)"
    )]
    OtherRequest,
}

/// A secret that cannot seal anything.
#[derive(Debug, thiserror::Error)]
#[error("a requestState key must be at least {MIN_SECRET_BYTES} bytes long (got {0})")]
pub struct WeakKey(pub usize);

struct SealKey {
    id: String,
    key: hmac::Key,
}

/// Seals and opens `requestState` values.
pub struct StateSealer {
    /// Non-empty; the first one seals.
    keys: Vec<SealKey>,
    ttl: Duration,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// What the state belongs to: [`Binding::digest`].
    #[serde(rename = "b")]
    binding: String,
    /// Expiry, Unix milliseconds.
    #[serde(rename = "e")]
    expires_ms: u64,
    /// The worker's own state, as it returned it.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    state: Option<Value>,
}

impl StateSealer {
    /// `secrets` in rotation order: the first seals, every one opens.
    pub fn new(secrets: &[Vec<u8>], ttl: Duration) -> Result<Self, WeakKey> {
        let keys = secrets
            .iter()
            .map(|s| {
                if s.len() < MIN_SECRET_BYTES {
                    return Err(WeakKey(s.len()));
                }
                // The id names the key without revealing it, so a rotated-out key is
                // recognised as such rather than reported as tampering.
                let id = hex8(digest::digest(&digest::SHA256, s).as_ref());
                Ok(SealKey {
                    id,
                    key: hmac::Key::new(hmac::HMAC_SHA256, s),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        assert!(!keys.is_empty(), "a sealer needs at least one key");
        Ok(Self { keys, ttl })
    }

    /// The opaque `requestState` for the client to echo back.
    pub fn seal(&self, binding: &str, state: Option<Value>) -> String {
        let payload = Payload {
            binding: binding.to_owned(),
            expires_ms: now_ms() + self.ttl.as_millis() as u64,
            state,
        };
        let body =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).expect("JSON values encode"));
        let key = &self.keys[0];
        let signed = format!("{}.{body}", key.id);
        let tag = hmac::sign(&key.key, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The worker's state inside `token`, if `token` is intact, current and for `binding`.
    pub fn open(&self, binding: &str, token: &str) -> Result<Option<Value>, StateError> {
        let (signed, tag) = token.rsplit_once('.').ok_or(StateError::Malformed)?;
        let (id, body) = signed.split_once('.').ok_or(StateError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| StateError::Tampered)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(StateError::UnknownKey)?;
        hmac::verify(&key.key, signed.as_bytes(), &tag).map_err(|_| StateError::Tampered)?;
        // Only now, with the origin proven, is the payload worth parsing.
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| StateError::Malformed)?;
        let payload: Payload = serde_json::from_slice(&bytes).map_err(|_| StateError::Malformed)?;
        if payload.expires_ms < now_ms() {
            return Err(StateError::Expired);
        }
        if payload.binding != binding {
            return Err(StateError::OtherRequest);
        }
        Ok(payload.state)
    }
}

impl StateSealer {
    /// A tag that proves this cluster wrote `data`: base64url HMAC-SHA256 with the sealing
    /// key. For handles that must stay lookup-free yet unforgeable (see `core::answer_id`).
    pub fn tag(&self, data: &str) -> String {
        let tag = hmac::sign(&self.keys[0].key, data.as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Whether `tag` is [`StateSealer::tag`] of `data` under any key held (rotation).
    pub fn verify_tag(&self, data: &str, tag: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        self.keys
            .iter()
            .any(|k| hmac::verify(&k.key, data.as_bytes(), &tag).is_ok())
    }
}

/// The sealer for this gateway: the configured secrets, or else the cluster's generated key
/// from the cluster KV bucket, created by whichever gateway gets there first.
pub async fn cluster_sealer(
    configured: &[String],
    ttl: Duration,
    cluster: &async_nats::jetstream::kv::Store,
) -> Result<StateSealer, KeySetupError> {
    let secrets: Vec<Vec<u8>> = if configured.is_empty() {
        vec![cluster_secret(cluster).await?]
    } else {
        configured.iter().map(|s| s.as_bytes().to_vec()).collect()
    };
    Ok(StateSealer::new(&secrets, ttl)?)
}

async fn cluster_secret(
    cluster: &async_nats::jetstream::kv::Store,
) -> Result<Vec<u8>, KeySetupError> {
    use bus_schema::topology::REQUEST_STATE_KEY;
    let read = |e: async_nats::Error| KeySetupError::Bus(e.to_string());
    if let Some(existing) = cluster
        .get(REQUEST_STATE_KEY)
        .await
        .map_err(|e| read(e.into()))?
    {
        return Ok(existing.to_vec());
    }
    let mut fresh = [0u8; MIN_SECRET_BYTES];
    getrandom::fill(&mut fresh).map_err(|e| KeySetupError::Random(e.to_string()))?;
    let fresh = URL_SAFE_NO_PAD.encode(fresh).into_bytes();
    // `create` fails when another gateway won the race; its key is then the one to use.
    if cluster
        .create(REQUEST_STATE_KEY, fresh.clone().into())
        .await
        .is_ok()
    {
        return Ok(fresh);
    }
    cluster
        .get(REQUEST_STATE_KEY)
        .await
        .map_err(|e| read(e.into()))?
        .map(|b| b.to_vec())
        .ok_or_else(|| KeySetupError::Bus("the cluster key vanished while it was created".into()))
}

/// Why no sealer could be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetupError {
    #[error(transparent)]
    Weak(#[from] WeakKey),
    #[error("cannot read or create the cluster key: {0}")]
    Bus(String),
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// What a `requestState` is bound to (ADR 0005): who asked (the principal), the method, the
/// exact target of that method (the tool or prompt name, or the resource URI; never "name or
/// URI", which let a retry add a `name` equal to the original URI and open the state for any
/// resource), the pool that serves it, and the full SHA-256 of the arguments. Changing any
/// one of them alone gives another binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// [`bus_schema::principal::Principal::key`], or empty without auth.
    pub principal: &'a str,
    pub method: &'a str,
    pub target: &'a str,
    /// The pool serving the target, or empty when none does (the request then fails).
    pub pool: &'a str,
    /// `params.arguments`, or null. `serde_json` orders object keys, so equal arguments
    /// hash equally whatever order the client wrote them in.
    pub arguments: &'a Value,
}

impl Binding<'_> {
    /// SHA-256 over the length-prefixed fields, in hex: what a sealed state carries.
    pub fn digest(&self) -> String {
        let arguments = digest::digest(&digest::SHA256, self.arguments.to_string().as_bytes());
        let mut text = String::new();
        for field in [self.principal, self.method, self.target, self.pool] {
            text.push_str(&format!("{}:{field}", field.len()));
        }
        text.push_str(&hex(arguments.as_ref()));
        hex(digest::digest(&digest::SHA256, text.as_bytes()).as_ref())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first 4 bytes as 8 hex digits: a key's id, which names it without revealing it.
fn hex8(bytes: &[u8]) -> String {
    hex(&bytes[..4])
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sealer(secrets: &[&str]) -> StateSealer {
        let secrets: Vec<Vec<u8>> = secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
        StateSealer::new(&secrets, Duration::from_secs(60)).unwrap()
    }

    const A: &str = "a-secret-of-at-least-thirty-two-bytes-1";

    fn binding(method: &str, params: &Value) -> String {
        Binding {
            principal: "",
            method,
            target: params["name"].as_str().unwrap_or_default(),
            pool: "p",
            arguments: params.get("arguments").unwrap_or(&Value::Null),
        }
        .digest()
    }
    const B: &str = "b-secret-of-at-least-thirty-two-bytes-2";

    #[test]
    fn a_sealed_state_opens_to_what_was_sealed() {
        let s = sealer(&[A]);
        let b = binding("tools/call", &json!({"name": "t", "arguments": {"x": 1}}));
        let token = s.seal(&b, Some(json!({"answers": {"k": 1}})));
        assert_eq!(s.open(&b, &token), Ok(Some(json!({"answers": {"k": 1}}))));
        assert_eq!(s.open(&b, &s.seal(&b, None)), Ok(None));
    }

    /// Found by `props::a_sealed_state_opens_to_what_was_sealed`: without serde_json's
    /// `float_roundtrip` a worker's state came back with this float one unit in the last
    /// place off.
    #[test]
    fn floats_in_a_state_open_exactly() {
        let s = sealer(&[A]);
        let state = json!({"protocol": [1.891791297789361e-308]});
        assert_eq!(
            s.open("", &s.seal("", Some(state.clone()))),
            Ok(Some(state))
        );
    }

    #[test]
    fn any_change_to_the_token_is_refused() {
        let s = sealer(&[A]);
        let b = binding("tools/call", &json!({"name": "t"}));
        let token = s.seal(&b, Some(json!(1)));
        assert_eq!(
            s.open(&b, &format!("{token}-TAMPERED")),
            Err(StateError::Tampered)
        );
        // Flip one character of the payload.
        let (id, rest) = token.split_once('.').unwrap();
        let mut body: Vec<char> = rest.chars().collect();
        body[3] = if body[3] == 'A' { 'B' } else { 'A' };
        let forged = format!("{id}.{}", body.into_iter().collect::<String>());
        assert_eq!(s.open(&b, &forged), Err(StateError::Tampered));
        assert_eq!(s.open(&b, "garbage"), Err(StateError::Malformed));
    }

    #[test]
    fn a_state_only_opens_for_its_own_request() {
        let s = sealer(&[A]);
        let b = binding("tools/call", &json!({"name": "t", "arguments": {"x": 1}}));
        let token = s.seal(&b, None);
        for other in [
            json!({"name": "u", "arguments": {"x": 1}}),
            json!({"name": "t", "arguments": {"x": 2}}),
        ] {
            let b2 = binding("tools/call", &other);
            assert_eq!(s.open(&b2, &token), Err(StateError::OtherRequest));
        }
        let reordered = json!({"arguments": {"x": 1}, "name": "t"});
        assert_eq!(s.open(&binding("tools/call", &reordered), &token), Ok(None));
    }

    #[test]
    fn every_field_of_the_binding_counts_on_its_own() {
        let args = json!({"x": 1});
        let base = Binding {
            principal: "5:https://as/alice",
            method: "tools/call",
            target: "t",
            pool: "p",
            arguments: &args,
        };
        let changed_args = json!({"x": 2});
        let others = [
            Binding {
                principal: "5:https://as/bob",
                ..base
            },
            Binding {
                principal: "",
                ..base
            },
            Binding {
                method: "prompts/get",
                ..base
            },
            Binding {
                target: "u",
                ..base
            },
            Binding { pool: "q", ..base },
            Binding {
                arguments: &changed_args,
                ..base
            },
            // Text moved between fields does not give the same binding.
            Binding {
                target: "",
                pool: "tp",
                ..base
            },
        ];
        let s = sealer(&[A]);
        let token = s.seal(&base.digest(), None);
        assert_eq!(s.open(&base.digest(), &token), Ok(None));
        for other in others {
            assert_eq!(
                s.open(&other.digest(), &token),
                Err(StateError::OtherRequest),
                "{other:?}"
            );
        }
        assert_eq!(base.digest().len(), 64, "the full SHA-256, not a prefix");
    }

    #[test]
    fn rotation_keeps_old_states_open_until_the_old_key_is_dropped() {
        let old = sealer(&[A]);
        let b = binding("prompts/get", &json!({"name": "p"}));
        let token = old.seal(&b, None);
        assert_eq!(sealer(&[B, A]).open(&b, &token), Ok(None));
        assert_eq!(sealer(&[B]).open(&b, &token), Err(StateError::UnknownKey));
    }

    #[test]
    fn expired_states_are_refused() {
        let secrets = vec![A.as_bytes().to_vec()];
        let s = StateSealer::new(&secrets, Duration::ZERO).unwrap();
        let b = binding("tools/call", &json!({"name": "t"}));
        let token = s.seal(&b, None);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(s.open(&b, &token), Err(StateError::Expired));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(StateSealer::new(&[b"short".to_vec()], Duration::from_secs(1)).is_err());
    }
}
