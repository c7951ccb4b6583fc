//! Tasks of the 2026-07-28 `io.modelcontextprotocol/tasks` extension, with their state in
//! JetStream so that any gateway answers for any task and a task outlives the gateway and
//! the connection that created it.
//!
//! A task's record lives in KV `mcpbus-tasks`; the replies of its calls are stored in
//! `MCPBUS_EVENTS` under the task's scope, like a session's request streams. The record is
//! brought up to date lazily: whichever gateway reads a working task looks at the last reply
//! of its current call and writes what it finds (compare-and-set, so concurrent readers
//! agree). Input a task needs is asked for the MRTR way: the worker's round ends with an
//! `InputRequiredResult`, the client answers with `tasks/update`, and the next round runs
//! with the answers and the worker's state.

mod record;

use async_nats::jetstream::kv;
use bus_schema::messages::{decode, CallEvent, CallReply};
use bus_schema::subjects;
use serde_json::{json, Map, Value};

pub use record::{rfc3339, TaskRecord, TaskStatus};

use crate::stream::EventStore;

/// The extension's name in capabilities.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// A task store failure: the bus, never the client.
#[derive(Debug, thiserror::Error)]
#[error("task store: {0}")]
pub struct TaskStoreError(String);

/// Task records, and the events of their calls.
#[derive(Clone)]
pub struct TaskStore {
    kv: kv::Store,
    events: EventStore,
}

impl TaskStore {
    pub fn new(kv: kv::Store, events: EventStore) -> Self {
        Self { kv, events }
    }

    /// Stops a task's current round wherever it is: out of the queue if no worker took it
    /// yet, and a cancel signal to the worker running it.
    pub async fn stop_round(&self, record: &TaskRecord) {
        self.events
            .cancel_call(subjects::cancel(&record.call_id), record.call_seq)
            .await;
    }

    /// Stores a new task; it is readable by every gateway once this returns.
    pub async fn create(&self, record: &TaskRecord) -> Result<(), TaskStoreError> {
        let bytes = serde_json::to_vec(record).expect("records encode");
        self.kv
            .create(&record.task_id, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| TaskStoreError(e.to_string()))
    }

    /// The record and its revision (for [`TaskStore::replace`]), or `None` when unknown.
    pub async fn get(&self, task_id: &str) -> Result<Option<(TaskRecord, u64)>, TaskStoreError> {
        if !valid_task_id(task_id) {
            return Ok(None);
        }
        let entry = self
            .kv
            .entry(task_id)
            .await
            .map_err(|e| TaskStoreError(e.to_string()))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| Some((serde_json::from_slice(&e.value).ok()?, e.revision))))
    }

    /// Writes `record` if nobody changed it since `revision`: its new revision, or `None`
    /// if somebody did.
    pub async fn replace(
        &self,
        record: &TaskRecord,
        revision: u64,
    ) -> Result<Option<u64>, TaskStoreError> {
        let bytes = serde_json::to_vec(record).expect("records encode");
        match self
            .kv
            .update(&record.task_id, bytes.into(), revision)
            .await
        {
            Ok(new) => Ok(Some(new)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(TaskStoreError(e.to_string())),
        }
    }

    /// The record as it stands now, with its revision: a working task whose current call
    /// has finished (or passed its deadline) is moved on and written back. `None` for an
    /// unknown or expired task.
    pub async fn current(
        &self,
        task_id: &str,
        now_ms: u64,
    ) -> Result<Option<(TaskRecord, u64)>, TaskStoreError> {
        for _ in 0..5 {
            let Some((mut record, revision)) = self.get(task_id).await? else {
                return Ok(None);
            };
            if record.expired(now_ms) {
                return Ok(None);
            }
            if record.status != TaskStatus::Working {
                return Ok(Some((record, revision)));
            }
            let last = self
                .events
                .last_event(&subjects::task_scope(task_id), &record.call_id)
                .await
                .map_err(|e| TaskStoreError(e.to_string()))?;
            if !advance(
                &mut record,
                last.as_ref().map(|(_, b)| b.as_slice()),
                now_ms,
            ) {
                return Ok(Some((record, revision)));
            }
            if let Some(revision) = self.replace(&record, revision).await? {
                return Ok(Some((record, revision)));
            }
            // Another gateway moved it first: read again.
        }
        Err(TaskStoreError("the task record keeps changing".into()))
    }
}

/// Whether a stored event is a request to the client still waiting for its answer: the
/// worker blocks on it, so it is the last event of the call while it waits (2025-11-25).
pub fn is_pending_question(event: &[u8]) -> bool {
    decode::<CallReply>(event).is_ok_and(|r| matches!(r.event, CallEvent::Request { .. }))
}

/// Task ids are ours (hex), so anything else is unknown without a lookup, and never reaches
/// a KV key or a subject.
fn valid_task_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Moves a working task on from the last reply of its current call. True if it changed.
pub fn advance(record: &mut TaskRecord, last: Option<&[u8]>, now_ms: u64) -> bool {
    let event = last
        .and_then(|b| decode::<CallReply>(b).ok())
        .map(|r| r.event);
    match event {
        Some(CallEvent::Result { result }) if is_input_required(&result) => {
            record.status = TaskStatus::InputRequired;
            record.input_requests = result
                .get("inputRequests")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            record.request_state = result.get("requestState").cloned();
            record.answers = Map::new();
        }
        // 2025-11-25 reports a tool error as `failed` (2026-07-28: `completed` + isError);
        // `tasks/result` still returns the tool's result.
        Some(CallEvent::Result { result })
            if record.session.is_some() && result.get("isError") == Some(&Value::Bool(true)) =>
        {
            record.status = TaskStatus::Failed;
            record.status_message = Some("the tool reported an error".into());
            record.result = Some(result);
        }
        Some(CallEvent::Result { result }) => {
            record.status = TaskStatus::Completed;
            record.result = Some(result);
        }
        Some(CallEvent::Error { error }) => {
            record.status = TaskStatus::Failed;
            record.status_message = Some(error.message.clone());
            let mut e = json!({"code": error.code, "message": error.message});
            if let Some(data) = error.data {
                e["data"] = data;
            }
            record.error = Some(e);
        }
        _ if now_ms > record.deadline_ms => {
            record.status = TaskStatus::Failed;
            record.error = Some(json!({
                "code": crate::error::code::INTERNAL_ERROR,
                "message": format!("tool {:?} did not finish in time", record.tool),
                "data": {"reason": "timeout"},
            }));
        }
        _ => return false,
    }
    record.updated_ms = now_ms;
    true
}

fn is_input_required(result: &Value) -> bool {
    result.get("resultType").and_then(Value::as_str) == Some("input_required")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus_schema::messages::{encode, WireError};
    use bus_schema::names::{InstanceId, PoolName};

    fn working() -> TaskRecord {
        TaskRecord {
            task_id: "t1".into(),
            status: TaskStatus::Working,
            created_ms: 1_000,
            updated_ms: 1_000,
            ttl_ms: 60_000,
            tool: "slow".into(),
            pool: PoolName::new("p").unwrap(),
            params: json!({"name": "slow"}),
            client_capabilities: json!({}),
            call_id: "c1".into(),
            deadline_ms: 10_000,
            call_seq: 0,
            input_requests: Map::new(),
            answers: Map::new(),
            request_state: None,
            result: None,
            error: None,
            session: None,
            status_message: None,
        }
    }

    fn reply(event: CallEvent) -> Vec<u8> {
        encode(&CallReply {
            protocol: 1,
            call_id: "c1".into(),
            instance: InstanceId::new("w").unwrap(),
            event,
        })
        .to_vec()
    }

    #[test]
    fn replies_move_a_working_task_on() {
        let mut t = working();
        assert!(!advance(&mut t, Some(&reply(CallEvent::Accepted)), 2_000));
        assert!(!advance(&mut t, None, 2_000));

        let done = json!({"content": [], "isError": true});
        assert!(advance(
            &mut t,
            Some(&reply(CallEvent::Result {
                result: done.clone()
            })),
            2_000
        ));
        assert_eq!(
            (t.status, t.result.clone()),
            (TaskStatus::Completed, Some(done))
        );

        let mut t = working();
        let ask = json!({"resultType": "input_required",
            "inputRequests": {"k": {"method": "elicitation/create"}}, "requestState": {"s": 1}});
        assert!(advance(
            &mut t,
            Some(&reply(CallEvent::Result { result: ask })),
            2_000
        ));
        assert_eq!(t.status, TaskStatus::InputRequired);
        assert!(t.input_requests.contains_key("k"));
        assert_eq!(t.request_state, Some(json!({"s": 1})));

        let mut t = working();
        let error = WireError {
            code: -32603,
            message: "boom".into(),
            data: None,
        };
        assert!(advance(
            &mut t,
            Some(&reply(CallEvent::Error { error })),
            2_000
        ));
        assert_eq!(t.status, TaskStatus::Failed);
        assert_eq!(t.error.as_ref().unwrap()["code"], -32603);
        assert!(t.detailed().get("result").is_none());

        let mut t = working();
        assert!(advance(&mut t, None, 10_001), "past the deadline");
        assert_eq!(t.error.unwrap()["data"]["reason"], "timeout");
    }

    #[test]
    fn unknown_ids_never_reach_the_store() {
        assert!(valid_task_id("0a1b2c"));
        for bad in ["", "a.b", "a*", "a>", &"x".repeat(65)] {
            assert!(!valid_task_id(bad), "{bad}");
        }
    }
}
