//! What one principal may see and use: the union of the grants of every rule that applies
//! to it. Computed per request from the current policy (a handful of rules), so a policy
//! change applies to the very next request.

use super::pattern::Pattern;
use super::rules::Grant;

/// One principal's view of the catalogue. `All` when no policy is configured.
#[derive(Debug, Clone)]
pub enum View {
    All,
    Granted(Vec<Grant>),
}

/// The kinds of things a policy grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Tool,
    /// A resource URI, or a resource template's `uriTemplate`.
    Resource,
    Prompt,
}

impl View {
    /// Whether an item named `key` (tool or prompt name, URI, or URI template), served by
    /// `pool`, is visible and usable.
    pub fn allows(&self, item: Item, key: &str, pool: &str) -> bool {
        let View::Granted(grants) = self else {
            return true;
        };
        let any = |patterns: &[Pattern], text: &str| patterns.iter().any(|p| p.matches(text));
        grants.iter().any(|g| {
            any(&g.pools, pool)
                || match item {
                    Item::Tool => any(&g.tools, key),
                    Item::Resource => any(&g.resources, key),
                    Item::Prompt => any(&g.prompts, key),
                }
        })
    }

    /// Whether the view depends on who asks (a list answered from it is private).
    pub fn is_filtered(&self) -> bool {
        matches!(self, View::Granted(_))
    }
}
