//! What a call runs once it was let through (`decide.rs`), and how each kind of failure
//! reaches the client: a tool's failure as a result with `isError`, a read's or a prompt's
//! as a JSON-RPC error.

use bus_schema::mcp::code::{INTERNAL_ERROR, INVALID_PARAMS};
use bus_schema::messages::{CallRequest, WireError};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Map, Value};

use crate::call_error::{CallError, ProtocolError};
use crate::completion::MAX_COMPLETIONS;
use crate::context::CallContext;
use crate::prompt::PromptDef;
use crate::resource::ResourceDef;
use crate::tool::ToolDef;

/// What a call runs.
pub(crate) enum Job {
    Tool(ToolDef),
    Read(ResourceDef, String),
    Prompt(PromptDef, Map<String, Value>),
    Complete(Vec<String>),
}

impl Job {
    /// The job's future, producing the MCP result or a protocol error.
    pub(crate) fn start(
        self,
        ctx: CallContext,
        req: &CallRequest,
    ) -> BoxFuture<'static, Result<Value, WireError>> {
        match self {
            Job::Tool(tool) => {
                let args = req.params.get("arguments").cloned().unwrap_or(Value::Null);
                async move {
                    if tool.escalate_at_start {
                        ctx.run_as_task().await;
                    }
                    (tool.handler)(ctx, args).await
                }
                .map(|r| match r {
                    Ok(output) => Ok(output.into_result()),
                    Err(CallError::Tool(e)) => Ok(e.into_result()),
                    Err(CallError::Protocol(e)) => Err(e.into_wire()),
                    Err(CallError::InputRequired(ask)) => Ok(ask.result),
                })
                .boxed()
            }
            Job::Read(resource, uri) => (resource.read)(ctx, uri)
                .map(|r| {
                    r.map(|contents| json!({"contents": contents}))
                        .or_else(|e| protocol_failure(e, INTERNAL_ERROR))
                })
                .boxed(),
            Job::Prompt(prompt, args) => (prompt.get)(ctx, args)
                .map(|r| r.or_else(|e| protocol_failure(e, INVALID_PARAMS)))
                .boxed(),
            Job::Complete(values) => {
                let total = values.len();
                let values: Vec<String> = values.into_iter().take(MAX_COMPLETIONS).collect();
                let result = json!({"completion": {"values": values, "total": total, "hasMore": total > MAX_COMPLETIONS}});
                futures::future::ready(Ok(result)).boxed()
            }
        }
    }
}

/// How a failed read or prompt reaches the client: its `InputRequiredResult` when it stopped
/// to ask, its own protocol error, or `code` with its message.
fn protocol_failure(e: CallError, code: i64) -> Result<Value, WireError> {
    match e {
        CallError::InputRequired(ask) => Ok(ask.result),
        CallError::Protocol(e) => Err(e.into_wire()),
        CallError::Tool(e) => Err(ProtocolError::new(code, e.message).into_wire()),
    }
}
