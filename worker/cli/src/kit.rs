//! The kit tools served by `mcpbus-worker kit`: what `mcpbusctl worker-check` calls to check
//! a worker (PROTOCOL.md §10, ADR 0018). Each exists to exercise one piece of the
//! protocol; none is useful on its own.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use mcpbus_worker_sdk::{ToolDef, ToolError, ToolOutput};

#[derive(Deserialize, JsonSchema)]
struct TextArgs {
    /// Text to return.
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct ProgressArgs {
    /// How many progress steps to send.
    steps: u32,
    /// Pause after each step, in milliseconds.
    delay_ms: u64,
}

#[derive(Deserialize, JsonSchema)]
struct SlowArgs {
    /// How long to wait, in milliseconds.
    ms: u64,
}

#[derive(Deserialize, JsonSchema)]
struct FailArgs {
    /// The tool error's text.
    message: String,
}

#[derive(Deserialize, JsonSchema)]
struct NoArgs {}

/// Long enough for the kit's slowest call; the kit sets its own deadlines.
const KIT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn tools() -> Vec<ToolDef> {
    let idempotent = json!({"idempotentHint": true});
    vec![
        ToolDef::typed("kit_echo", |_ctx, a: TextArgs| async move { Ok(a.text) })
            .description("Returns text (idempotent: a redelivered call runs again).")
            .annotations(idempotent.clone()),
        ToolDef::typed("kit_once", |_ctx, a: TextArgs| async move { Ok(a.text) })
            .description("Returns text (not idempotent: a redelivered call is worker_lost)."),
        ToolDef::typed("kit_progress", |ctx, a: ProgressArgs| async move {
            for i in 1..=a.steps {
                ctx.progress(f64::from(i), Some(f64::from(a.steps)), None).await;
                tokio::time::sleep(Duration::from_millis(a.delay_ms)).await;
            }
            // The SDK's log replies name no logger; the contract's `kit` is optional there.
            ctx.log("info", json!("progress done")).await;
            Ok(format!("done {}", a.steps))
        })
        .description("Sends progress 1..=steps, then a log line.")
        .annotations(idempotent.clone()),
        ToolDef::typed("kit_slow", |ctx, a: SlowArgs| async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(a.ms)) => Ok(format!("slept {}", a.ms)),
                _ = ctx.cancellation().cancelled() => Err(ToolError::new("cancelled").into()),
            }
        })
        .description("Waits ms milliseconds; stops at once when cancelled.")
        .timeout(KIT_TIMEOUT),
        ToolDef::typed("kit_fail", |_ctx, a: FailArgs| async move {
            Err::<ToolOutput, _>(ToolError::new(a.message).into())
        })
        .description("Fails with message as a tool error.")
        .annotations(idempotent),
        ToolDef::typed("kit_ask", |ctx, _a: NoArgs| async move {
            let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}},
                "required": ["answer"]});
            let answer = ctx
                .ask_keyed("answer", "elicitation/create", json!({"message": "kit?", "requestedSchema": schema}))
                .await?;
            let text = answer["content"]["answer"].as_str().unwrap_or_default().to_owned();
            Ok(format!("answer: {text}"))
        })
        .description("Asks the client for an answer (elicitation/create) and returns it.")
        .annotations(json!({"idempotentHint": false})),
    ]
}
