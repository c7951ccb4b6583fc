//! `resultType` values (2026-07-28): what a result is.

use serde_json::Value;

/// A complete result.
pub const COMPLETE: &str = "complete";
/// An `InputRequiredResult`: the client must answer and retry (MRTR).
pub const INPUT_REQUIRED: &str = "input_required";
/// A `CreateTaskResult`: the call became a task.
pub const TASK: &str = "task";

/// Whether a result asks the client for input.
pub fn is_input_required(result: &Value) -> bool {
    result.get("resultType").and_then(Value::as_str) == Some(INPUT_REQUIRED)
}
