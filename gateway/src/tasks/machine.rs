//! How a task moves on: from the last stored reply of its current round to its next status.
//! Pure, so that every gateway that reads a task comes to the same record.

use bus_schema::mcp::code;
use bus_schema::mcp::result_type::is_input_required;
use bus_schema::messages::{decode, CallEvent, CallReply};
use serde_json::{json, Map, Value};

use super::record::{TaskRecord, TaskStatus};

/// Whether a stored event is a request to the client still waiting for its answer: the
/// worker blocks on it, so it is the last event of the call while it waits (2025-11-25).
pub fn is_pending_question(event: &[u8]) -> bool {
    decode::<CallReply>(event).is_ok_and(|r| matches!(r.event, CallEvent::Request { .. }))
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
                "code": code::INTERNAL_ERROR,
                "message": format!("tool {:?} did not finish in time", record.tool),
                "data": {"reason": "timeout"},
            }));
        }
        _ => return false,
    }
    record.updated_ms = now_ms;
    true
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use bus_schema::messages::{encode, WireError};
    use bus_schema::names::{InstanceId, PoolName};

    pub(super) fn working() -> TaskRecord {
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
            principal: None,
            status_message: None,
        }
    }

    fn reply(event: CallEvent) -> Vec<u8> {
        encode(&CallReply {
            protocol: bus_schema::PROTOCOL_VERSION,
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
        assert!(super::super::view::detailed(&t).get("result").is_none());

        let mut t = working();
        assert!(advance(&mut t, None, 10_001), "past the deadline");
        assert_eq!(t.error.unwrap()["data"]["reason"], "timeout");
    }
}
