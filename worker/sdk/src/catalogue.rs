//! What a worker serves, changeable while it runs.
//!
//! Handlers (through [`crate::CallContext::catalogue`]) and the worker's owner may add and
//! remove tools, resources and prompts at any time; the registration then publishes the new
//! catalogue under its new digest and every gateway announces `list_changed`. A bridge uses
//! this when the server behind it changes its lists.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

use crate::prompt::PromptDef;
use crate::resource::ResourceDef;
use crate::tool::ToolDef;

/// The served set at one moment. Ordered by name, so replicas with the same contents
/// publish the same digest.
#[derive(Clone, Default)]
pub(crate) struct Contents {
    pub tools: BTreeMap<String, ToolDef>,
    /// Keyed by URI or URI template.
    pub resources: BTreeMap<String, ResourceDef>,
    pub prompts: BTreeMap<String, PromptDef>,
}

impl Contents {
    pub(crate) fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.resources.is_empty() && self.prompts.is_empty()
    }
}

/// A shared, changeable catalogue. Cloning it gives another handle to the same one.
#[derive(Clone, Default)]
pub struct Catalogue {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    current: RwLock<Arc<Contents>>,
    changed: Notify,
}

impl Catalogue {
    /// What is served now; a call keeps the snapshot it started with.
    pub(crate) fn snapshot(&self) -> Arc<Contents> {
        self.inner.current.read().expect("never poisoned").clone()
    }

    /// Resolves after the next change (or at once if one happened since the last wait).
    pub(crate) async fn changed(&self) {
        self.inner.changed.notified().await
    }

    fn update(&self, change: impl FnOnce(&mut Contents) -> bool) -> bool {
        let mut current = self.inner.current.write().expect("never poisoned");
        let mut next = Contents::clone(&current);
        let changed = change(&mut next);
        if changed {
            *current = Arc::new(next);
            // `notify_one` keeps a permit when nobody waits yet, so no change is missed.
            self.inner.changed.notify_one();
        }
        changed
    }

    /// Adds a tool, or replaces the one with its name.
    pub fn add_tool(&self, tool: ToolDef) {
        self.update(|c| {
            c.tools.insert(tool.name().to_owned(), tool);
            true
        });
    }

    /// Removes a tool; false if there was none of that name.
    pub fn remove_tool(&self, name: &str) -> bool {
        self.update(|c| c.tools.remove(name).is_some())
    }

    /// The names of the tools served now.
    pub fn tool_names(&self) -> Vec<String> {
        self.snapshot().tools.keys().cloned().collect()
    }

    /// The URIs (templates) of the resources served now.
    pub fn resource_keys(&self) -> Vec<String> {
        self.snapshot().resources.keys().cloned().collect()
    }

    /// The names of the prompts served now.
    pub fn prompt_names(&self) -> Vec<String> {
        self.snapshot().prompts.keys().cloned().collect()
    }

    pub fn has_tool(&self, name: &str) -> bool {
        self.snapshot().tools.contains_key(name)
    }

    /// Adds a resource or template, or replaces the one with its URI (template).
    pub fn add_resource(&self, resource: ResourceDef) {
        self.update(|c| {
            c.resources.insert(resource.key().to_owned(), resource);
            true
        });
    }

    pub fn remove_resource(&self, uri: &str) -> bool {
        self.update(|c| c.resources.remove(uri).is_some())
    }

    /// Adds a prompt, or replaces the one with its name.
    pub fn add_prompt(&self, prompt: PromptDef) {
        self.update(|c| {
            c.prompts.insert(prompt.name().to_owned(), prompt);
            true
        });
    }

    pub fn remove_prompt(&self, name: &str) -> bool {
        self.update(|c| c.prompts.remove(name).is_some())
    }

    pub fn has_prompt(&self, name: &str) -> bool {
        self.snapshot().prompts.contains_key(name)
    }
}
