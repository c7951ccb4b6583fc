//! From verified claims (a JWT's payload or an introspection answer) to a principal: the
//! same rules for both kinds of token, so a worker cannot tell which one the client used.

use bus_schema::principal::Principal;
use serde_json::{Map, Value};

use super::error::AuthError;

/// Builds the principal. `fallback_subject` names a claim used when `sub` is absent (the
/// `client_id` of an introspected client-credentials token); JWTs have none, as RFC 9068
/// requires `sub`. A fallback subject is prefixed with `<claim>:`, so a client id can never
/// be the same principal as a user whose `sub` happens to spell it.
pub fn principal(
    issuer: &str,
    claims: &Map<String, Value>,
    allowed: &[String],
    fallback_subject: Option<&str>,
) -> Result<Principal, AuthError> {
    let named = |claim: &str| {
        claims
            .get(claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let subject = match (named("sub"), fallback_subject) {
        (Some(sub), _) => sub.to_owned(),
        (None, Some(f)) => named(f)
            .map(|v| format!("{f}:{v}"))
            .ok_or_else(|| AuthError::invalid("the token names no subject"))?,
        (None, None) => return Err(AuthError::invalid("the token names no subject")),
    };
    Ok(Principal {
        issuer: issuer.to_owned(),
        subject,
        scopes: scopes(claims),
        claims: allowed
            .iter()
            .filter_map(|name| claims.get(name).map(|v| (name.clone(), v.clone())))
            .collect(),
    })
}

/// Scopes from `scope` (RFC 9068 / RFC 7662: one space-separated string) or `scp` (an
/// array, as some issuers send).
pub fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => s.split_whitespace().map(str::to_owned).collect(),
        (_, Some(Value::Array(a))) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        (_, Some(Value::String(s))) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// Whether `aud` (a string or an array of strings) names `audience`.
pub fn audience_matches(aud: &Value, audience: &str) -> bool {
    match aud {
        Value::String(s) => s == audience,
        Value::Array(a) => a.iter().any(|v| v.as_str() == Some(audience)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        assert_eq!(scopes(&map(json!({"scope": "a  b"}))), ["a", "b"]);
        assert_eq!(scopes(&map(json!({"scp": ["a", "b"]}))), ["a", "b"]);
        assert!(scopes(&map(json!({}))).is_empty());
    }

    #[test]
    fn only_allow_listed_claims_are_copied() {
        let c = map(json!({"sub": "u", "groups": ["g"], "email": "x@y"}));
        let p = principal("https://as", &c, &["groups".into()], None).unwrap();
        assert_eq!(p.subject, "u");
        assert_eq!(p.claims.len(), 1);
        assert_eq!(p.claims["groups"], json!(["g"]));
    }

    #[test]
    fn a_token_without_subject_is_refused_unless_a_fallback_names_one() {
        let c = map(json!({"client_id": "svc"}));
        assert!(principal("https://as", &c, &[], None).is_err());
        let p = principal("https://as", &c, &[], Some("client_id")).unwrap();
        // Prefixed: a user whose `sub` is "svc" is someone else.
        assert_eq!(p.subject, "client_id:svc");
        let user = principal("https://as", &map(json!({"sub": "svc"})), &[], None).unwrap();
        assert_ne!(user.key(), p.key());
    }
}
