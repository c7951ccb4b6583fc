//! Tool declarations and what a tool handler returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::context::CallContext;

/// A boxed tool handler: receives the call context and the raw `arguments` object.
pub(crate) type Handler = Arc<
    dyn Fn(CallContext, Value) -> BoxFuture<'static, Result<ToolOutput, ToolError>> + Send + Sync,
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

impl ToolDef {
    /// A tool whose handler takes the raw `arguments` JSON. Its `inputSchema` is an open
    /// object until [`ToolDef::input_schema`] says otherwise.
    pub fn raw<F, Fut>(name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
    {
        let mut tool = Map::new();
        tool.insert("name".into(), Value::String(name.into()));
        tool.insert("inputSchema".into(), json!({"type": "object"}));
        Self {
            tool,
            timeout: None,
            handler: Arc::new(move |ctx, args| handler(ctx, args).boxed()),
            escalate_at_start: false,
        }
    }

    /// A tool declared by a complete MCP `Tool` object (e.g. one another server listed),
    /// whose handler takes the raw `arguments`.
    pub fn from_declaration<F, Fut>(decl: Value, handler: F) -> Self
    where
        F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
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
    pub fn typed<A, F, Fut>(name: impl Into<String>, handler: F) -> Self
    where
        A: DeserializeOwned + schemars::JsonSchema + Send + 'static,
        F: Fn(CallContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
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

    /// Replaces the handler, keeping the declaration.
    pub fn handler<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
    {
        self.handler = Arc::new(move |ctx, args| handler(ctx, args).boxed());
        self
    }

    /// Sets `inputSchema` to a JSON Schema written by hand.
    pub fn input_schema_value(self, schema: Value) -> Self {
        self.set("inputSchema", schema)
    }

    /// Derives `inputSchema` from a Rust type.
    pub fn input_schema<T: schemars::JsonSchema>(self) -> Self {
        self.set("inputSchema", schema_of::<T>())
    }

    /// Derives `outputSchema` from a Rust type; results should then carry
    /// `structuredContent` ([`ToolOutput::structured`]).
    pub fn output_schema<T: schemars::JsonSchema>(self) -> Self {
        self.set("outputSchema", schema_of::<T>())
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
        let ctx = CallContext {
            nats: None,
            reply_to: String::new(),
            call_id: "in-process".into(),
            instance: bus_schema::names::InstanceId::new("in-process").expect("valid id"),
            wants_progress: false,
            cancel: Default::default(),
            durable: None,
            sent: Default::default(),
            delivery: 1,
            asked: Default::default(),
            client_capabilities: Value::Null,
            lane: bus_schema::messages::Lane::Session,
            deadline_ms: 0,
            mrtr: Default::default(),
            catalogue: Default::default(),
            task_id: None,
            escalated: Default::default(),
        };
        match (self.handler)(ctx, arguments).await {
            Ok(out) => out.into_result(),
            Err(e) => e.into_result(),
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

/// A JSON Schema object for `T`, without the `$schema` keyword (MCP tools default to 2020-12,
/// which is what schemars emits) so that schemas stay compact in `tools/list`.
fn schema_of<T: schemars::JsonSchema>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_else(|_| json!({}));
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.entry("type").or_insert_with(|| json!("object"));
    }
    schema
}

/// A successful tool result: MCP content blocks and optional structured content.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub content: Vec<Value>,
    pub structured: Option<Value>,
    /// A failure the model should read (`isError: true`), e.g. passed on from a bridged
    /// server; handlers usually return [`ToolError`] instead.
    pub is_error: bool,
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![json!({"type": "text", "text": text.into()})],
            structured: None,
            is_error: false,
        }
    }

    /// Structured content, mirrored as a JSON text block for clients that ignore
    /// `structuredContent` (as the MCP spec recommends).
    pub fn structured(value: Value) -> Self {
        Self {
            content: vec![json!({"type": "text", "text": value.to_string()})],
            structured: Some(value),
            is_error: false,
        }
    }

    /// The MCP `CallToolResult`.
    pub(crate) fn into_result(self) -> Value {
        let mut result = json!({"content": self.content, "isError": self.is_error});
        if let Some(s) = self.structured {
            result["structuredContent"] = s;
        }
        result
    }
}

/// JSON-RPC code of a missing client capability (2026-07-28).
pub(crate) const MISSING_CAPABILITY: i64 = -32021;

/// A tool that failed: the client gets a result with `isError: true` and this message, so
/// that a model can read it and try again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    pub message: String,
    /// Set when the failure is the protocol's, not the tool's: the client then gets this
    /// JSON-RPC error instead of a result with `isError`.
    pub protocol: Option<bus_schema::messages::WireError>,
    /// Set when the handler stopped to ask the client for input on the 2026-07-28 lane:
    /// the `InputRequiredResult` to answer with (see [`crate::CallContext::ask`]).
    pub(crate) input_required: Option<Value>,
}

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            protocol: None,
            input_required: None,
        }
    }

    /// The handler needs the client's input first: the call answers with `result`, an
    /// `InputRequiredResult`, and the client retries with its answers.
    pub(crate) fn input_required(result: Value) -> Self {
        Self {
            message: "the client's input is required".into(),
            protocol: None,
            input_required: Some(result),
        }
    }

    /// A protocol error: the client gets this JSON-RPC error instead of a tool result.
    pub fn protocol(code: i64, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            protocol: Some(bus_schema::messages::WireError {
                code,
                message: message.clone(),
                data: None,
            }),
            message,
            input_required: None,
        }
    }

    /// The request needs a client capability the client did not declare: -32021
    /// (`MissingRequiredClientCapability`, 2026-07-28) with `data.requiredCapabilities`.
    pub fn missing_capability(capability: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let data = json!({"requiredCapabilities": {capability: {}}});
        Self {
            protocol: Some(bus_schema::messages::WireError {
                code: MISSING_CAPABILITY,
                message: message.clone(),
                data: Some(data),
            }),
            message,
            input_required: None,
        }
    }

    pub(crate) fn into_result(self) -> Value {
        json!({"content": [{"type": "text", "text": self.message}], "isError": true})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Args {
        /// Some text.
        text: String,
    }

    #[test]
    fn typed_tools_derive_their_input_schema() {
        let t = ToolDef::typed("t", |_c, _a: Args| async { Ok(ToolOutput::text("x")) });
        let schema = &t.tool["inputSchema"];
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["text"]["type"], "string");
        assert_eq!(schema["required"], json!(["text"]));
        assert!(schema.get("$schema").is_none());
    }

    #[test]
    fn results_have_the_mcp_shape() {
        let ok = ToolOutput::structured(json!({"sum": 3})).into_result();
        assert_eq!(ok["structuredContent"]["sum"], 3);
        assert_eq!(ok["isError"], false);
        let err = ToolError::new("boom").into_result();
        assert_eq!(err["isError"], true);
        assert_eq!(err["content"][0]["text"], "boom");
    }
}
