//! Resources and resource templates a worker serves, beside its tools.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Map, Value};

use crate::call_error::CallError;
use crate::completion::CompleteFn;
use crate::context::CallContext;

/// Reads a resource: receives the requested URI, returns the MCP `contents` array.
pub(crate) type ReadFn = Arc<
    dyn Fn(CallContext, String) -> BoxFuture<'static, Result<Vec<Value>, CallError>> + Send + Sync,
>;

/// A resource with a fixed URI, or a template of URIs.
#[derive(Clone)]
pub struct ResourceDef {
    /// The MCP `Resource` or `ResourceTemplate` object.
    pub(crate) decl: Map<String, Value>,
    pub(crate) template: bool,
    pub(crate) read: ReadFn,
    pub(crate) complete: Option<CompleteFn>,
}

impl ResourceDef {
    fn new<F, Fut>(key: &str, value: &str, name: &str, read: F, template: bool) -> Self
    where
        F: Fn(CallContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Value>, CallError>> + Send + 'static,
    {
        let mut decl = Map::new();
        decl.insert(key.into(), json!(value));
        decl.insert("name".into(), json!(name));
        Self::from_declaration(decl, template, read)
    }

    /// A resource or template declared by a complete MCP `Resource` / `ResourceTemplate`
    /// object (e.g. one another server listed).
    pub fn from_declaration<F, Fut>(decl: Map<String, Value>, template: bool, read: F) -> Self
    where
        F: Fn(CallContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Value>, CallError>> + Send + 'static,
    {
        Self {
            decl,
            template,
            read: Arc::new(move |ctx, uri| read(ctx, uri).boxed()),
            complete: None,
        }
    }

    /// A resource at one URI.
    pub fn fixed<F, Fut>(uri: &str, name: &str, read: F) -> Self
    where
        F: Fn(CallContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Value>, CallError>> + Send + 'static,
    {
        Self::new("uri", uri, name, read, false)
    }

    /// Every URI matching `uri_template` (`{name}` variables, RFC 6570 level 1).
    pub fn template<F, Fut>(uri_template: &str, name: &str, read: F) -> Self
    where
        F: Fn(CallContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Value>, CallError>> + Send + 'static,
    {
        Self::new("uriTemplate", uri_template, name, read, true)
    }

    pub fn description(mut self, text: &str) -> Self {
        self.decl.insert("description".into(), json!(text));
        self
    }

    pub fn mime_type(mut self, mime: &str) -> Self {
        self.decl.insert("mimeType".into(), json!(mime));
        self
    }

    /// Completes template variables.
    pub fn completer(
        mut self,
        f: impl Fn(&str, &str) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.complete = Some(Arc::new(f));
        self
    }

    /// The URI, or the URI template.
    pub(crate) fn key(&self) -> &str {
        let field = if self.template { "uriTemplate" } else { "uri" };
        self.decl
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub(crate) fn serves(&self, uri: &str) -> bool {
        if self.template {
            bus_schema::uri_template::match_uri(self.key(), uri).is_some()
        } else {
            self.key() == uri
        }
    }
}
