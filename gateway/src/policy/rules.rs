//! The policy document: rules that grant tools, resources, prompts or whole pools to the
//! principals that meet a condition (scopes, claims). What no rule grants is not there for
//! that principal: it is neither listed nor callable.

use std::collections::BTreeMap;

use bus_schema::principal::Principal;
use serde::Deserialize;
use serde_json::Value;

use super::pattern::Pattern;

/// The whole document, as operators write it (JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    pub rules: Vec<Rule>,
}

/// Grants `allow` to every principal that meets `when`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// For people and logs only.
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub when: Condition,
    pub allow: Grant,
}

/// Who a rule applies to. Empty: everyone (with auth off, the anonymous caller too).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Every one of these scopes must have been granted to the token.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Every listed claim must hold one of the given values (a claim that is a list matches
    /// when any of its items does). Only claims the gateway copies from tokens
    /// (`--auth-claim`) can match.
    #[serde(default)]
    pub claims: BTreeMap<String, OneOrMany>,
}

/// A claim's accepted value, or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// What a rule grants.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Tool names.
    #[serde(default)]
    pub tools: Vec<Pattern>,
    /// Resource URIs; for a resource template, its `uriTemplate` text.
    #[serde(default)]
    pub resources: Vec<Pattern>,
    /// Prompt names.
    #[serde(default)]
    pub prompts: Vec<Pattern>,
    /// Pools: everything they serve.
    #[serde(default)]
    pub pools: Vec<Pattern>,
}

impl Condition {
    pub fn holds_for(&self, principal: Option<&Principal>) -> bool {
        if self.scopes.is_empty() && self.claims.is_empty() {
            return true;
        }
        let Some(p) = principal else { return false };
        self.scopes.iter().all(|s| p.has_scope(s))
            && self.claims.iter().all(|(name, accepted)| {
                let accepted: &[String] = match accepted {
                    OneOrMany::One(v) => std::slice::from_ref(v),
                    OneOrMany::Many(v) => v,
                };
                match p.claims.get(name) {
                    Some(Value::String(s)) => accepted.contains(s),
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|s| accepted.iter().any(|a| a == s)),
                    Some(Value::Bool(b)) => accepted.contains(&b.to_string()),
                    Some(Value::Number(n)) => accepted.contains(&n.to_string()),
                    _ => false,
                }
            })
    }
}
