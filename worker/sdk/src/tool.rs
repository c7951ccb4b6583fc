//! Tool declarations: the MCP `Tool` object a worker publishes, and the handler behind it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bus_schema::principal::Principal;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::call_error::{CallError, ToolError};
use crate::context::CallContext;
use crate::output::{IntoToolOutput, ToolOutput};
use crate::schema;

/// A boxed tool handler: receives the call context and the raw `arguments` object.
pub(crate) type Handler = Arc<
    dyn Fn(CallContext, Value) -> BoxFuture<'static, Result<ToolOutput, CallError>> + Send + Sync,
>;

/// One tool: its MCP description and its handler.
#[derive(Clone)]
pub struct ToolDef {
    /// The MCP `Tool` object shown by `tools/list`.
    pub(crate) tool: Map<String, Value>,
    /// How long gateways wait for a result; `None` uses the gateway default.
    pub(crate) timeout: Option<Duration>,
    pub(crate) handler: Handler,
    /// For a tool that supports tasks: escalate as soon as the call starts, rather than
    /// when the handler says so ([`CallContext::run_as_task`]).
    pub(crate) escalate_at_start: bool,
}

/// Whether a tool runs as a task (2026-07-28 tasks extension), as `execution.taskSupport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSupport {
    /// Runs as a task when the client takes tasks, else as an ordinary call.
    Optional,
    /// Only runs as a task: clients that do not take tasks get -32021.
    Required,
}

/// Boxes a handler returning any [`IntoToolOutput`].
fn boxed<F, Fut, O>(handler: F) -> Handler
where
    F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, CallError>> + Send + 'static,
    O: IntoToolOutput,
{
    Arc::new(move |ctx, args| {
        handler(ctx, args)
            .map(|r| r.map(IntoToolOutput::into_tool_output))
            .boxed()
    })
}

impl ToolDef {
    /// A tool whose handler takes the raw `arguments` JSON. Its `inputSchema` is an open
    /// object until [`ToolDef::input_schema`] says otherwise; its `outputSchema` is the
    /// handler's, if it returns [`crate::Json`].
    pub fn raw<F, Fut, O>(name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, CallError>> + Send + 'static,
        O: IntoToolOutput,
    {
        let mut tool = Map::new();
        tool.insert("name".into(), Value::String(name.into()));
        tool.insert("inputSchema".into(), json!({"type": "object"}));
        if let Some(schema) = O::output_schema() {
            tool.insert("outputSchema".into(), schema);
        }
        Self {
            tool,
            timeout: None,
            handler: boxed(handler),
            escalate_at_start: false,
        }
    }

    /// A tool declared by a complete MCP `Tool` object (e.g. one another server listed),
    /// whose handler takes the raw `arguments`. The declaration is kept as it is.
    pub fn from_declaration<F, Fut, O>(decl: Value, handler: F) -> Self
    where
        F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, CallError>> + Send + 'static,
        O: IntoToolOutput,
    {
        let name = decl["name"].as_str().unwrap_or_default().to_owned();
        let mut tool = Self::raw(name, handler);
        if let Value::Object(obj) = decl {
            tool.tool = obj;
        }
        tool
    }

    /// A tool whose arguments deserialize into `A`; `inputSchema` is derived from `A`.
    /// Arguments that do not fit `A` produce a tool error the model can read and correct.
    pub fn typed<A, F, Fut, O>(name: impl Into<String>, handler: F) -> Self
    where
        A: DeserializeOwned + schemars::JsonSchema + Send + 'static,
        F: Fn(CallContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, CallError>> + Send + 'static,
        O: IntoToolOutput,
    {
        let handler = Arc::new(handler);
        Self::raw(name, move |ctx, args| {
            let handler = handler.clone();
            async move {
                let args = if args.is_null() { json!({}) } else { args };
                let parsed: A = serde_json::from_value(args)
                    .map_err(|e| ToolError::new(format!("invalid arguments: {e}")))?;
                handler(ctx, parsed).await
            }
        })
        .input_schema::<A>()
    }

    pub fn name(&self) -> &str {
        self.tool["name"].as_str().unwrap_or_default()
    }

    fn set(mut self, key: &str, value: Value) -> Self {
        self.tool.insert(key.into(), value);
        self
    }

    /// The same tool under another name.
    pub fn named(self, name: impl Into<String>) -> Self {
        self.set("name", Value::String(name.into()))
    }

    pub fn title(self, title: impl Into<String>) -> Self {
        self.set("title", Value::String(title.into()))
    }

    pub fn description(self, text: impl Into<String>) -> Self {
        self.set("description", Value::String(text.into()))
    }

    /// Replaces the handler, keeping the declaration; a handler returning [`crate::Json`]
    /// also sets its `outputSchema`.
    pub fn handler<F, Fut, O>(mut self, handler: F) -> Self
    where
        F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, CallError>> + Send + 'static,
        O: IntoToolOutput,
    {
        self.handler = boxed(handler);
        match O::output_schema() {
            Some(schema) => self.set("outputSchema", schema),
            None => self,
        }
    }

    /// Sets `inputSchema` to a JSON Schema written by hand.
    pub fn input_schema_value(self, schema: Value) -> Self {
        self.set("inputSchema", schema)
    }

    /// Derives `inputSchema` from a Rust type.
    pub fn input_schema<T: schemars::JsonSchema>(self) -> Self {
        self.set("inputSchema", schema::of::<T>())
    }

    /// Derives `outputSchema` from a Rust type, for a handler that builds its structured
    /// content itself ([`ToolOutput::structured`]). A handler returning [`crate::Json`]
    /// needs no call: its type's schema is declared already.
    pub fn output_schema<T: schemars::JsonSchema>(self) -> Self {
        self.set("outputSchema", schema::of::<T>())
    }

    /// Sets `outputSchema` to a JSON Schema written by hand.
    pub fn output_schema_value(self, schema: Value) -> Self {
        self.set("outputSchema", schema)
    }

    /// MCP tool annotations, e.g. `{"readOnlyHint": true, "idempotentHint": true}`.
    /// `idempotentHint` also decides whether a call interrupted by a worker crash runs again.
    pub fn annotations(self, annotations: Value) -> Self {
        self.set("annotations", annotations)
    }

    /// How long a gateway waits for this tool before answering the client with a timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs the handler in this process, without the bus, and returns the MCP
    /// `CallToolResult`. Progress and log messages go nowhere. For tests and benchmarks.
    pub async fn call_in_process(&self, arguments: Value) -> Value {
        self.call_in_process_as(None, arguments).await
    }

    /// [`call_in_process`](Self::call_in_process) as if the gateway had verified `principal`
    /// as the caller ([`CallContext::principal`]), to test handlers that depend on who calls.
    pub async fn call_in_process_as(
        &self,
        principal: Option<Principal>,
        arguments: Value,
    ) -> Value {
        let mut ctx = CallContext::in_process();
        ctx.principal = principal.map(Arc::new);
        match (self.handler)(ctx, arguments).await {
            Ok(out) => out.into_result(),
            Err(CallError::Tool(e)) => e.into_result(),
            Err(CallError::Protocol(e)) => ToolError::new(e.message).into_result(),
            Err(CallError::InputRequired(ask)) => ask.result,
        }
    }

    /// Declares task support. The call becomes a task as it starts; see
    /// [`ToolDef::escalates_itself`] to decide later.
    pub fn task_support(mut self, support: TaskSupport) -> Self {
        let value = match support {
            TaskSupport::Optional => "optional",
            TaskSupport::Required => "required",
        };
        self.tool
            .insert("execution".into(), json!({"taskSupport": value}));
        self.escalate_at_start = true;
        self
    }

    /// The handler itself decides when the call becomes a task, with
    /// [`CallContext::run_as_task`]: e.g. after asking the client for input in ordinary
    /// (MRTR) rounds.
    pub fn escalates_itself(mut self) -> Self {
        self.escalate_at_start = false;
        self
    }

    pub(crate) fn idempotent(&self) -> bool {
        self.tool
            .get("annotations")
            .and_then(|a| a.get("idempotentHint"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Json;

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Args {
        /// Some text.
        text: String,
    }

    #[derive(serde::Serialize, schemars::JsonSchema)]
    struct Count {
        count: u32,
    }

    #[test]
    fn typed_tools_derive_their_input_schema() {
        let t = ToolDef::typed("t", |_c, _a: Args| async { Ok(ToolOutput::text("x")) });
        let schema = &t.tool["inputSchema"];
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["text"]["type"], "string");
        assert_eq!(schema["required"], json!(["text"]));
        assert!(schema.get("$schema").is_none());
        assert!(t.tool.get("outputSchema").is_none());
    }

    #[tokio::test]
    async fn handlers_return_strings_or_json() {
        let text = ToolDef::typed("t", |_c, a: Args| async move { Ok(a.text) });
        let result = text.call_in_process(json!({"text": "hi"})).await;
        assert_eq!(result["content"][0]["text"], "hi");

        let counted = ToolDef::raw("c", |_c, _a| async { Ok(Json(Count { count: 2 })) });
        assert_eq!(
            counted.tool["outputSchema"]["properties"]["count"]["type"],
            "integer"
        );
        let result = counted.call_in_process(json!({})).await;
        assert_eq!(result["structuredContent"], json!({"count": 2}));
        assert_eq!(result["isError"], false);
    }

    #[tokio::test]
    async fn a_handler_tested_in_process_sees_the_principal_it_was_given() {
        let t = ToolDef::raw("who", |ctx, _a| async move {
            Ok(match ctx.principal() {
                Some(p) => format!("{} {}", p.subject, p.scopes.join(",")),
                None => "nobody".to_owned(),
            })
        });
        let alice = Principal {
            issuer: "https://issuer.test".into(),
            subject: "alice".into(),
            scopes: vec!["tools:read".into(), "tools:call".into()],
            claims: Map::new(),
        };
        let result = t.call_in_process_as(Some(alice), json!({})).await;
        assert_eq!(result["content"][0]["text"], "alice tools:read,tools:call");
        let result = t.call_in_process(json!({})).await;
        assert_eq!(result["content"][0]["text"], "nobody");
    }

    #[tokio::test]
    async fn bad_arguments_are_a_tool_error() {
        let t = ToolDef::typed("t", |_c, a: Args| async move { Ok(a.text) });
        let result = t.call_in_process(json!({"text": 3})).await;
        assert_eq!(result["isError"], true);
    }
}
