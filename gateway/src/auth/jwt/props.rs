//! A bearer token is the first thing a client sends, before any key is looked at: whatever
//! it holds, `peek` gives the check's inputs or refuses it, never a panic, and it lets
//! through only an asymmetric algorithm and a string issuer.

use bus_schema::strategies::json_value;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Algorithm names, allowed or not, with a few that only look like one.
fn alg() -> impl Strategy<Value = Value> {
    let names = vec![
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "none",
        "None", "HS256", "HS384", "HS512", "rs256", "RS256 ", "",
    ];
    prop_oneof![
        3 => prop::sample::select(names).prop_map(Value::from),
        1 => json_value(),
    ]
}

proptest! {
    #[test]
    fn any_token_is_peeked_or_refused(
        token in prop_oneof![
            any::<String>(),
            (json_value(), json_value(), "[A-Za-z0-9_-]{0,40}")
                .prop_map(|(h, p, s)| format!("{}.{}.{s}", b64(&h), b64(&p))),
        ]
    ) {
        let _ = looks_like_jwt(&token);
        let _ = peek(&token);
    }

    /// Only an allowed algorithm and a string `iss` get as far as a key; `none` and the
    /// HMAC family never do.
    #[test]
    fn only_asymmetric_tokens_with_an_issuer_pass_the_peek(
        alg in alg(),
        kid in prop::option::of(json_value()),
        iss in prop_oneof![any::<String>().prop_map(Value::from), json_value()],
    ) {
        let mut header = json!({"alg": alg, "typ": "at+jwt"});
        if let Some(kid) = kid {
            header["kid"] = kid;
        }
        let token = format!("{}.{}.sig", b64(&header), b64(&json!({"iss": iss})));
        let allowed = alg
            .as_str()
            .and_then(|a| a.parse::<Algorithm>().ok())
            .is_some_and(|a| ALLOWED_ALGORITHMS.contains(&a));
        match peek(&token) {
            Ok(head) => {
                prop_assert!(allowed && iss.is_string());
                prop_assert!(!matches!(head.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512));
                prop_assert_eq!(Some(head.issuer.as_str()), iss.as_str());
                prop_assert_eq!(head.kid.as_deref(), header["kid"].as_str());
            }
            Err(_) => prop_assert!(!(allowed && iss.is_string())),
        }
    }
}
