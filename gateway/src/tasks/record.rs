//! One task's record, as stored in KV `mcpbus-tasks`. How it reads on the wire is `view.rs`.

use bus_schema::names::PoolName;
use bus_schema::principal::Principal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    /// As stored and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::InputRequired => "input_required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

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
    /// Who created the task: only they may read, answer or cancel it, and its later rounds
    /// run on their behalf. `None` when the gateway runs without auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// Why a task failed, for people.
    #[serde(default)]
    pub status_message: Option<String>,
}

impl TaskRecord {
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms > self.created_ms.saturating_add(self.ttl_ms)
    }

    /// Whether `owner` may see the task: the same session (or, for 2026-07-28 tasks, none:
    /// neither lane sees the other's tasks) and the same principal.
    pub fn owned_by(&self, owner: TaskOwner<'_>) -> bool {
        self.session.as_deref() == owner.session
            && self.principal.as_ref().map(Principal::key) == owner.principal.map(Principal::key)
    }
}

/// Who asks about a task. A task of anyone else is as unknown as one that never was.
#[derive(Debug, Clone, Copy)]
pub struct TaskOwner<'a> {
    pub session: Option<&'a str>,
    pub principal: Option<&'a Principal>,
}
