//! Prompts a worker serves, beside its tools.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Map, Value};

use crate::call_error::CallError;
use crate::completion::CompleteFn;
use crate::context::CallContext;

/// Renders a prompt: receives its arguments, returns the MCP `GetPromptResult`.
pub(crate) type GetFn = Arc<
    dyn Fn(CallContext, Map<String, Value>) -> BoxFuture<'static, Result<Value, CallError>>
        + Send
        + Sync,
>;

/// A prompt.
#[derive(Clone)]
pub struct PromptDef {
    /// The MCP `Prompt` object.
    pub(crate) decl: Map<String, Value>,
    pub(crate) get: GetFn,
    pub(crate) complete: Option<CompleteFn>,
}

impl PromptDef {
    pub fn new<F, Fut>(name: &str, get: F) -> Self
    where
        F: Fn(CallContext, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, CallError>> + Send + 'static,
    {
        let mut decl = Map::new();
        decl.insert("name".into(), json!(name));
        Self::from_declaration(decl, get)
    }

    /// A prompt declared by a complete MCP `Prompt` object (e.g. one another server listed).
    pub fn from_declaration<F, Fut>(decl: Map<String, Value>, get: F) -> Self
    where
        F: Fn(CallContext, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, CallError>> + Send + 'static,
    {
        Self {
            decl,
            get: Arc::new(move |ctx, args| get(ctx, args).boxed()),
            complete: None,
        }
    }

    pub fn description(mut self, text: &str) -> Self {
        self.decl.insert("description".into(), json!(text));
        self
    }

    /// Declares an argument.
    pub fn argument(mut self, name: &str, description: &str, required: bool) -> Self {
        let args = self.decl.entry("arguments").or_insert_with(|| json!([]));
        if let Some(list) = args.as_array_mut() {
            list.push(json!({"name": name, "description": description, "required": required}));
        }
        self
    }

    /// Completes argument values.
    pub fn completer(
        mut self,
        f: impl Fn(&str, &str) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.complete = Some(Arc::new(f));
        self
    }

    pub(crate) fn name(&self) -> &str {
        self.decl
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Names of the required arguments, checked before the handler runs.
    pub(crate) fn required(&self) -> Vec<String> {
        self.decl
            .get("arguments")
            .and_then(Value::as_array)
            .map(|args| {
                args.iter()
                    .filter(|a| a["required"] == json!(true))
                    .filter_map(|a| a["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}
