//! One task's record, as stored in KV `mcpbus-tasks`, and how it reads on the wire.

use bus_schema::names::PoolName;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// Everything any gateway needs to answer for a task, and to run its next round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task_id: String,
    pub status: TaskStatus,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub ttl_ms: u64,
    /// The tool and the pool serving it.
    pub tool: String,
    pub pool: PoolName,
    /// The `tools/call` params of the first round, without `inputResponses` and
    /// `requestState`: each round starts from them.
    pub params: Value,
    pub client_capabilities: Value,
    /// The round running now: its call id and when it stops being waited for.
    pub call_id: String,
    pub deadline_ms: u64,
    /// Position of the round's call in the calls stream, to take it back out on cancel.
    #[serde(default)]
    pub call_seq: u64,
    /// While `input_required`: the questions not yet answered, the answers so far and the
    /// worker's own state, all handed to the next round.
    #[serde(default)]
    pub input_requests: Map<String, Value>,
    #[serde(default)]
    pub answers: Map<String, Value>,
    #[serde(default)]
    pub request_state: Option<Value>,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<Value>,
    /// The session a 2025-11-25 task belongs to (those tasks are bound to it); `None` for
    /// 2026-07-28 tasks.
    #[serde(default)]
    pub session: Option<String>,
    /// Why a task failed, for people.
    #[serde(default)]
    pub status_message: Option<String>,
}

/// How often a client should poll `tasks/get`.
pub const POLL_INTERVAL_MS: u64 = 500;

impl TaskRecord {
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms > self.created_ms.saturating_add(self.ttl_ms)
    }

    /// The `Task` fields every task message carries.
    fn task_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("taskId".into(), json!(self.task_id));
        m.insert("status".into(), json!(self.status));
        m.insert("createdAt".into(), json!(rfc3339(self.created_ms)));
        m.insert("lastUpdatedAt".into(), json!(rfc3339(self.updated_ms)));
        m.insert("ttlMs".into(), json!(self.ttl_ms));
        m.insert("pollIntervalMs".into(), json!(POLL_INTERVAL_MS));
        m
    }

    /// The `CreateTaskResult` answering the `tools/call` that made the task.
    pub fn create_result(&self) -> Value {
        let mut m = self.task_fields();
        m.insert("resultType".into(), json!("task"));
        Value::Object(m)
    }

    /// The `DetailedTask` of `tasks/get`: the result, error or open questions inlined.
    pub fn detailed(&self) -> Value {
        let mut m = self.task_fields();
        match self.status {
            TaskStatus::Completed => {
                if let Some(r) = &self.result {
                    m.insert("result".into(), r.clone());
                }
            }
            TaskStatus::Failed => {
                if let Some(e) = &self.error {
                    m.insert("error".into(), e.clone());
                }
            }
            TaskStatus::InputRequired => {
                m.insert(
                    "inputRequests".into(),
                    Value::Object(self.input_requests.clone()),
                );
            }
            TaskStatus::Working | TaskStatus::Cancelled => {}
        }
        Value::Object(m)
    }
}

impl TaskRecord {
    /// The 2025-11-25 `Task` object (`tasks/get`, `tasks/cancel`, inside `CreateTaskResult`),
    /// with `status` as the caller determined it (a pending question shows as
    /// `input_required` without being stored).
    pub fn legacy_task(&self, status: TaskStatus) -> Value {
        let mut task = json!({
            "taskId": self.task_id,
            "status": status,
            "createdAt": rfc3339(self.created_ms),
            "lastUpdatedAt": rfc3339(self.updated_ms),
            "ttl": self.ttl_ms,
            "pollInterval": POLL_INTERVAL_MS,
        });
        if let Some(m) = &self.status_message {
            task["statusMessage"] = json!(m);
        }
        task
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
