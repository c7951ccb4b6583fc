//! Authorization policy: which tools, resources, prompts and pools each principal may see
//! and use (ADR 0011).
//!
//! The document is a JSON file (`--auth-policy`); every gateway of a cluster reads the same
//! one (in Kubernetes, one ConfigMap) and re-reads it when its content changes, so an
//! operator changes the policy without a restart. A document that does not parse is
//! refused: at start-up the gateway does not start; later, it keeps the last good policy and
//! says so in its log and metrics. The core asks the current [`View`] of the caller in
//! `core/lists.rs` (lists filtered), `core/calls.rs` (a denied tool is an unknown tool, a
//! denied resource or prompt is not found), and `core/session.rs` (subscriptions).

mod pattern;
mod rules;
mod view;
mod watch;

use std::sync::Arc;

use bus_schema::principal::Principal;

pub use rules::PolicyDocument;
pub use view::{Item, View};
pub use watch::{watch, PolicyError};

/// A parsed policy and the digest of the text it came from.
#[derive(Debug)]
pub struct Policy {
    document: PolicyDocument,
    digest: String,
}

impl Policy {
    pub fn parse(text: &[u8]) -> Result<Self, serde_json::Error> {
        let document: PolicyDocument = serde_json::from_slice(text)?;
        Ok(Self {
            document,
            digest: bus_schema::messages::digest([text.to_vec()]),
        })
    }

    /// Identifies this version of the policy (logs, metrics, `list_changed` ids).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// What `principal` may see and use.
    pub fn view(&self, principal: Option<&Principal>) -> View {
        View::Granted(
            self.document
                .rules
                .iter()
                .filter(|r| r.when.holds_for(principal))
                .map(|r| r.allow.clone())
                .collect(),
        )
    }
}

/// The policy in force on this gateway, if one is configured; updated by [`watch`].
#[derive(Clone)]
pub struct Policies {
    rx: tokio::sync::watch::Receiver<Option<Arc<Policy>>>,
}

impl Policies {
    /// No policy: every principal sees everything (auth alone decides who gets in).
    pub fn none() -> Self {
        let (_tx, rx) = tokio::sync::watch::channel(None);
        Self { rx }
    }

    pub fn current(&self) -> Option<Arc<Policy>> {
        self.rx.borrow().clone()
    }

    /// What `principal` may see and use under the policy in force.
    pub fn view(&self, principal: Option<&Principal>) -> View {
        match self.current() {
            Some(p) => p.view(principal),
            None => View::All,
        }
    }

    /// Changes as they are loaded (for `list_changed` announcements).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Option<Arc<Policy>>> {
        self.rx.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal(scopes: &[&str], claims: serde_json::Value) -> Principal {
        Principal {
            issuer: "https://as".into(),
            subject: "s".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            claims: claims.as_object().cloned().unwrap_or_default(),
        }
    }

    fn policy(doc: serde_json::Value) -> Policy {
        Policy::parse(doc.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn grants_follow_scopes_and_claims() {
        let p = policy(json!({"rules": [
            {"allow": {"tools": ["echo"]}},
            {"when": {"scopes": ["admin"]}, "allow": {"pools": ["ops"]}},
            {"when": {"claims": {"groups": ["eng", "sre"]}}, "allow": {"tools": ["deploy_*"],
                "resources": ["test://static/*"], "prompts": ["greeting"]}},
        ]}));
        let nobody = p.view(None);
        let reader = p.view(Some(&principal(&["read"], json!({}))));
        let admin = p.view(Some(&principal(&["admin"], json!({}))));
        let engineer = p.view(Some(&principal(&[], json!({"groups": ["x", "eng"]}))));
        for v in [&nobody, &reader, &admin, &engineer] {
            assert!(v.allows(Item::Tool, "echo", "demo"), "{v:?}");
            assert!(!v.allows(Item::Tool, "rm", "demo"), "{v:?}");
        }
        assert!(admin.allows(Item::Tool, "anything", "ops"));
        assert!(admin.allows(Item::Prompt, "anything", "ops"));
        assert!(!reader.allows(Item::Tool, "anything", "ops"));
        assert!(engineer.allows(Item::Tool, "deploy_web", "demo"));
        assert!(engineer.allows(Item::Resource, "test://static/text", "demo"));
        assert!(!engineer.allows(Item::Resource, "test://secret", "demo"));
        assert!(engineer.allows(Item::Prompt, "greeting", "demo"));
        assert!(!reader.allows(Item::Tool, "deploy_web", "demo"));
        assert!(!p
            .view(Some(&principal(&[], json!({"groups": "ops"}))))
            .allows(Item::Tool, "deploy_web", "demo"));
        assert!(nobody.is_filtered());
        assert!(!View::All.is_filtered());
    }

    #[test]
    fn mistakes_in_a_document_are_refused_not_guessed() {
        for bad in [
            json!({}),
            json!({"rules": [{"allow": {"tool": ["echo"]}}]}),
            json!({"rules": [{"when": {"scope": ["a"]}, "allow": {}}]}),
            json!({"rules": [{"allow": {"tools": [""]}}]}),
            json!({"rules": [{"allow": {"tools": "echo"}}]}),
        ] {
            assert!(Policy::parse(bad.to_string().as_bytes()).is_err(), "{bad}");
        }
    }
}
