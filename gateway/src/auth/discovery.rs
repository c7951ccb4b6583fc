//! Where an issuer publishes its keys and its introspection endpoint: RFC 8414
//! authorization server metadata, else OpenID Connect discovery (the MCP specification asks
//! clients to try both; a resource server benefits from the same tolerance).

use reqwest::Url;
use serde_json::Value;

use super::error::FetchError;
use super::fetch::Fetcher;

/// The parts of an issuer's metadata a resource server uses.
#[derive(Debug, Clone)]
pub struct IssuerMetadata {
    pub jwks_uri: Option<Url>,
    pub introspection_endpoint: Option<Url>,
}

/// The metadata URLs to try, in order. For an issuer with a path, RFC 8414 inserts the
/// well-known segment before the path; OIDC appends it after.
pub fn candidates(issuer: &str) -> Vec<Url> {
    let Ok(base) = Url::parse(issuer) else {
        return Vec::new();
    };
    let path = base.path().trim_end_matches('/').to_owned();
    let at = |p: &str| {
        let mut u = base.clone();
        u.set_path(p);
        u.set_query(None);
        u
    };
    let mut out = vec![at(&format!(
        "/.well-known/oauth-authorization-server{path}"
    ))];
    if !path.is_empty() {
        out.push(at(&format!("/.well-known/openid-configuration{path}")));
    }
    out.push(at(&format!("{path}/.well-known/openid-configuration")));
    out
}

/// Fetches the issuer's metadata from the first candidate that answers. The document must
/// name the same issuer (RFC 8414 §3.3), or anyone able to serve a document at that URL
/// could point us at keys of their own.
pub async fn discover(fetcher: &Fetcher, issuer: &str) -> Result<IssuerMetadata, FetchError> {
    let mut last = None;
    for url in candidates(issuer) {
        match fetcher.get_json(&url).await {
            Ok(doc) => return parse(&url, issuer, &doc),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| FetchError::Document {
        url: issuer.to_owned(),
        why: "not a URL".into(),
    }))
}

fn parse(url: &Url, issuer: &str, doc: &Value) -> Result<IssuerMetadata, FetchError> {
    let bad = |why: String| FetchError::Document {
        url: url.to_string(),
        why,
    };
    let named = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    if named != issuer {
        return Err(bad(format!("names issuer {named:?}, expected {issuer:?}")));
    }
    let endpoint = |field: &str| -> Result<Option<Url>, FetchError> {
        match doc.get(field).and_then(Value::as_str) {
            None => Ok(None),
            Some(s) => match Url::parse(s) {
                // The same rule as for configured URLs (`config::secure`).
                Ok(u) if super::config::secure(&u) => Ok(Some(u)),
                Ok(_) => Err(bad(format!("{field} {s:?} must use https"))),
                Err(_) => Err(bad(format!("{field} is not a URL"))),
            },
        }
    };
    Ok(IssuerMetadata {
        jwks_uri: endpoint("jwks_uri")?,
        introspection_endpoint: endpoint("introspection_endpoint")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_with_and_without_a_path_get_both_well_known_forms() {
        let plain: Vec<String> = candidates("https://as.example")
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            plain,
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
        let pathed: Vec<String> = candidates("https://as.example/tenant1")
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            pathed,
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration"
            ]
        );
    }
}
