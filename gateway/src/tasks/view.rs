//! How a task reads on the wire: the 2026-07-28 extension's `Task`, `DetailedTask` and
//! `CreateTaskResult`, and the 2025-11-25 `Task`. Renderings of one record; nothing here
//! changes it.

use bus_schema::mcp::{meta, result_type};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::record::{TaskRecord, TaskStatus};

/// How often a client should poll `tasks/get`.
pub const POLL_INTERVAL_MS: u64 = 500;

/// The `Task` fields every 2026-07-28 task message carries.
fn task_fields(record: &TaskRecord) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("taskId".into(), json!(record.task_id));
    m.insert("status".into(), json!(record.status));
    m.insert("createdAt".into(), json!(rfc3339(record.created_ms)));
    m.insert("lastUpdatedAt".into(), json!(rfc3339(record.updated_ms)));
    m.insert("ttlMs".into(), json!(record.ttl_ms));
    m.insert("pollIntervalMs".into(), json!(POLL_INTERVAL_MS));
    m
}

/// The 2026-07-28 `CreateTaskResult` answering the `tools/call` that made the task.
pub fn create_result(record: &TaskRecord) -> Value {
    let mut m = task_fields(record);
    m.insert("resultType".into(), json!(result_type::TASK));
    Value::Object(m)
}

/// The 2026-07-28 `DetailedTask` of `tasks/get`: the result, error or open questions inlined.
pub fn detailed(record: &TaskRecord) -> Value {
    let mut m = task_fields(record);
    match record.status {
        TaskStatus::Completed => {
            if let Some(r) = &record.result {
                m.insert("result".into(), r.clone());
            }
        }
        TaskStatus::Failed => {
            if let Some(e) = &record.error {
                m.insert("error".into(), e.clone());
            }
        }
        TaskStatus::InputRequired => {
            m.insert(
                "inputRequests".into(),
                Value::Object(record.input_requests.clone()),
            );
        }
        TaskStatus::Working | TaskStatus::Cancelled => {}
    }
    Value::Object(m)
}

/// The 2025-11-25 `Task` object (`tasks/get`, `tasks/cancel`, inside `CreateTaskResult`),
/// with `status` as the caller determined it (a pending question shows as
/// `input_required` without being stored).
pub fn legacy_task(record: &TaskRecord, status: TaskStatus) -> Value {
    let mut task = json!({
        "taskId": record.task_id,
        "status": status,
        "createdAt": rfc3339(record.created_ms),
        "lastUpdatedAt": rfc3339(record.updated_ms),
        "ttl": record.ttl_ms,
        "pollInterval": POLL_INTERVAL_MS,
    });
    if let Some(m) = &record.status_message {
        task["statusMessage"] = json!(m);
    }
    task
}

/// Marks a message's params or result as belonging to task `task_id` (2025-11-25).
pub fn relate_to_task(body: &mut Value, task_id: &str) {
    if let Some(obj) = body.as_object_mut() {
        let meta = obj.entry("_meta").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.insert(meta::RELATED_TASK.into(), json!({"taskId": task_id}));
        }
    }
}

/// Unix milliseconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_935_063_685), "2026-11-29T06:51:03.685Z");
    }
}
