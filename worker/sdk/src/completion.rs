//! Argument completion (`completion/complete`) for prompts and resource templates.

use std::sync::Arc;

/// Suggests values for an argument: `(argument, typed so far)` to candidates.
pub(crate) type CompleteFn = Arc<dyn Fn(&str, &str) -> Vec<String> + Send + Sync>;

/// Most completion values returned at once, as the MCP spec caps them.
pub(crate) const MAX_COMPLETIONS: usize = 100;
