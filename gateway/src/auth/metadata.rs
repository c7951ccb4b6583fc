//! RFC 9728 Protected Resource Metadata: how a client that got a 401 learns which
//! authorization servers to ask, for which resource and scopes.

use reqwest::Url;
use serde_json::{json, Value};

use super::config::AuthSettings;

/// The document and where it is advertised.
#[derive(Debug, Clone)]
pub struct ResourceMetadata {
    /// The URL put in `WWW-Authenticate: Bearer resource_metadata="…"`. Derived from the
    /// resource URI (`--auth-audience`), not from the request's `Host`: behind a load
    /// balancer the gateway cannot trust the Host it sees, and clients check that the
    /// document's `resource` is the URI they called. RFC 9728 §3.1 puts the well-known
    /// segment between the origin and the resource's path.
    pub url: String,
    pub document: Value,
}

impl ResourceMetadata {
    pub fn new(settings: &AuthSettings) -> Self {
        let url = match Url::parse(&settings.audience) {
            Ok(audience) => {
                let path = audience.path().trim_end_matches('/');
                format!(
                    "{}/.well-known/oauth-protected-resource{path}",
                    audience.origin().ascii_serialization()
                )
            }
            Err(_) => String::new(),
        };
        let mut document = json!({
            "resource": settings.audience,
            "authorization_servers": settings.issuers,
            "bearer_methods_supported": ["header"],
        });
        // Listed only when known: clients then ask for exactly these (MCP "Scope Selection").
        if !settings.required_scopes.is_empty() {
            document["scopes_supported"] = json!(settings.required_scopes);
        }
        Self { url, document }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_segment_before_the_path() {
        let s = AuthSettings::new(
            vec!["https://as.example".into()],
            "https://mcp.example.com/mcp".into(),
        );
        let m = ResourceMetadata::new(&s);
        assert_eq!(
            m.url,
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(m.document["resource"], "https://mcp.example.com/mcp");
        assert_eq!(m.document["bearer_methods_supported"][0], "header");
        assert!(m.document.get("scopes_supported").is_none());
        let root = AuthSettings::new(vec![], "https://mcp.example.com".into());
        assert_eq!(
            ResourceMetadata::new(&root).url,
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
    }
}
