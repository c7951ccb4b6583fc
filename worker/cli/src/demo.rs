//! The demo tools served by `mcpbus-worker demo`: small, deterministic, and each one shows a
//! piece of the protocol (plain text, structured output, tool errors, per-tool timeouts).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use mcpbus_worker_sdk::bus_schema::mcp::LogLevel;
use mcpbus_worker_sdk::{Announce, Json, ToolDef, ToolError, ToolOutput};

#[derive(Deserialize, JsonSchema)]
struct EchoArgs {
    /// Text to return unchanged.
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    /// First addend.
    a: f64,
    /// Second addend.
    b: f64,
}

#[derive(Serialize, JsonSchema)]
struct AddOutput {
    /// a + b
    sum: f64,
}

#[derive(Deserialize, JsonSchema)]
struct FailArgs {
    /// The error message the tool fails with.
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct AnnounceArgs {
    /// An MCP log level: debug, info, notice, warning, error, critical, alert, emergency.
    level: String,
    /// The message.
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct SleepArgs {
    /// How long to sleep, in milliseconds.
    ms: u64,
}

#[derive(Deserialize, JsonSchema)]
struct WaitArgs {
    /// How long to wait, in milliseconds.
    ms: u64,
    /// Progress notifications to send, evenly over the wait (when the client asked for
    /// progress). A rerun after a crash counts from 1 again.
    #[serde(default)]
    steps: u32,
}

#[derive(Deserialize, JsonSchema)]
struct NoArgs {}

#[derive(Deserialize, JsonSchema)]
struct SlowCountArgs {
    /// How many steps to count.
    n: u32,
    /// Pause before each step, in milliseconds.
    interval_ms: u64,
    /// Bytes of padding added to each progress message (at most 65536), to make a stream
    /// heavy without making it long: for exercising clients that read slowly.
    #[serde(default)]
    pad: usize,
}

/// Most padding `slow_count` adds to one progress message.
const MAX_PAD: usize = 64 * 1024;

#[derive(Serialize, JsonSchema)]
struct SlowCountOutput {
    /// The number counted to.
    count: u32,
}

/// Declared timeout of `sleep`, short so that the timeout path is easy to see and test.
pub const SLEEP_TIMEOUT: Duration = Duration::from_secs(3);

/// Declared timeout of `wait`: longer than JetStream's redelivery after a worker crash (30 s),
/// so that a call interrupted by a crash can finish on another replica.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(120);

/// Declared timeout of `slow_count`: room for long demonstrations.
pub const SLOW_COUNT_TIMEOUT: Duration = Duration::from_secs(600);

/// The `echo`, `add`, `announce`, `fail`, `sleep`, `slow_count`, `wait` and `whoami` tools.
pub fn tools() -> Vec<ToolDef> {
    vec![
        echo(),
        ToolDef::typed("announce", |ctx, a: AnnounceArgs| async move {
            let level = a.level.parse::<LogLevel>().map_err(ToolError::new)?;
            ctx.announce(&Announce::new(level, a.text).logger("demo"))
                .await
                .map_err(|e| ToolError::new(e.to_string()))?;
            Ok(ToolOutput::text("announced"))
        })
        .description("Sends text as a server-wide notifications/message to every session's standalone stream (rate-limited by the gateways)."),
        ToolDef::typed("add", |_ctx, a: AddArgs| async move {
            Ok(Json(AddOutput { sum: a.a + a.b }))
        })
        .title("Add two numbers")
        .description("Adds a and b; the result is structured content matching outputSchema.")
        .annotations(json!({"readOnlyHint": true, "idempotentHint": true})),
        ToolDef::typed("fail", |_ctx, a: FailArgs| async move {
            Err::<ToolOutput, _>(ToolError::new(a.message.unwrap_or_else(|| "the fail tool always fails".into())).into())
        })
        .description("Always fails with the given message (a tool error, isError: true)."),
        ToolDef::typed("sleep", |ctx, a: SleepArgs| async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(a.ms)) => Ok(ToolOutput::text(format!("slept {} ms", a.ms))),
                _ = ctx.cancellation().cancelled() => Err(ToolError::new("cancelled").into()),
            }
        })
        .description("Sleeps for ms milliseconds. Its declared timeout is 3 s, to show per-tool timeouts.")
        .timeout(SLEEP_TIMEOUT)
        .annotations(json!({"readOnlyHint": true, "idempotentHint": true})),
        ToolDef::typed("slow_count", |ctx, a: SlowCountArgs| async move {
            for i in 1..=a.n {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(a.interval_ms)) => {}
                    _ = ctx.cancellation().cancelled() => return Err(ToolError::new("cancelled").into()),
                }
                let pad = ".".repeat(a.pad.min(MAX_PAD));
                ctx.progress(f64::from(i), Some(f64::from(a.n)), Some(format!("step {i} of {}{pad}", a.n))).await;
            }
            Ok(Json(SlowCountOutput { count: a.n }))
        })
        .description("Counts to n, one progress notification per step, interval_ms apart; returns the count. Shows streams that outlive a gateway.")
        .timeout(SLOW_COUNT_TIMEOUT)
        .annotations(json!({"readOnlyHint": true})),
        ToolDef::typed("wait", |ctx, a: WaitArgs| async move {
            let waited = async {
                let step = Duration::from_millis(a.ms) / a.steps.max(1);
                for i in 1..=a.steps {
                    tokio::time::sleep(step).await;
                    ctx.progress(f64::from(i), Some(f64::from(a.steps)), None).await;
                }
                tokio::time::sleep(Duration::from_millis(a.ms).saturating_sub(step * a.steps)).await;
            };
            tokio::select! {
                _ = waited => {
                    Ok(ToolOutput::structured(json!({"waited_ms": a.ms, "instance": ctx.instance().as_str()})))
                }
                _ = ctx.cancellation().cancelled() => Err(ToolError::new("cancelled").into()),
            }
        })
        .description("Waits ms milliseconds, with `steps` progress notifications on the way, then says which instance waited. Idempotent: a wait interrupted by a crashed worker runs again on another replica.")
        .timeout(WAIT_TIMEOUT)
        .annotations(json!({"readOnlyHint": true, "idempotentHint": true})),
        whoami(),
    ]
}

/// `whoami`: which instance ran the call and, when the gateway checks tokens, who called
/// (`principal`: issuer, subject, scopes and allow-listed claims, as the gateway verified
/// them). Without auth there is no `principal` field, so the output stays what it was.
pub fn whoami() -> ToolDef {
    ToolDef::typed("whoami", |ctx, _a: NoArgs| async move {
        let mut out = json!({"instance": ctx.instance().as_str()});
        if let Some(p) = ctx.principal() {
            out["principal"] = json!({
                "issuer": p.issuer,
                "subject": p.subject,
                "scopes": p.scopes,
                "claims": p.claims,
            });
        }
        Ok(ToolOutput::structured(out))
    })
    .description("Returns the id of the worker instance that ran the call and, when the gateway checks tokens, the caller: issuer, subject, scopes and allow-listed claims.")
    .annotations(json!({"readOnlyHint": true, "idempotentHint": true}))
}

/// `echo`: returns `text` unchanged. Also used as the in-process baseline of the benchmark.
pub fn echo() -> ToolDef {
    ToolDef::typed("echo", |_ctx, a: EchoArgs| async move { Ok(a.text) })
        .title("Echo")
        .description("Returns the given text unchanged.")
        .annotations(json!({"readOnlyHint": true, "idempotentHint": true}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpbus_worker_sdk::Principal;

    #[tokio::test]
    async fn whoami_names_the_caller_when_there_is_one() {
        let alice = Principal {
            issuer: "https://issuer.test".into(),
            subject: "alice".into(),
            scopes: vec!["tools:call".into()],
            claims: serde_json::from_value(json!({"groups": ["ops"]})).unwrap(),
        };
        let result = whoami().call_in_process_as(Some(alice), json!({})).await;
        assert_eq!(
            result["structuredContent"],
            json!({"instance": "in-process", "principal": {
                "issuer": "https://issuer.test", "subject": "alice",
                "scopes": ["tools:call"], "claims": {"groups": ["ops"]}}})
        );
        let anonymous = whoami().call_in_process(json!({})).await;
        assert_eq!(
            anonymous["structuredContent"],
            json!({"instance": "in-process"})
        );
    }
}
