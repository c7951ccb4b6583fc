//! The rules of PROTOCOL.md §5.8 as assertions over a call's trace. Each returns
//! why it does not hold, in words a worker author can act on.

use bus_schema::messages::{CallEvent, WireError};
use serde_json::Value;

use super::call::{Route, Sent};
use super::observe::{AckKind, Trace};

pub type Check = Result<(), String>;

/// The call was refused before it ran: no `accepted`.
pub fn not_accepted(t: &Trace) -> Check {
    match t.replies.iter().any(|r| r.kind() == "accepted") {
        true => Err(format!("refusals send no `accepted`, got: {}", t.kinds())),
        false => Ok(()),
    }
}

/// The call ran: `accepted` first, exactly one final reply, last. `accepted` may be left out
/// when the final reply is the only one (PROTOCOL §5.2: a call that answers at once).
pub fn ran(t: &Trace) -> Check {
    let first = t.replies.first();
    let answered_at_once = t.replies.len() == 1 && first.is_some_and(|r| r.is_final());
    if first.map(|r| r.kind()) != Some("accepted") && !answered_at_once {
        return Err(format!(
            "the first reply must be `accepted` (or the final reply, alone), got: {}",
            t.kinds()
        ));
    }
    one_final_last(t)
}

/// Exactly one `result` or `error`, and nothing after it.
pub fn one_final_last(t: &Trace) -> Check {
    if let Some(bad) = t.replies.iter().find(|r| r.body.is_err()) {
        return Err(format!(
            "unreadable reply: {}",
            bad.body.as_ref().unwrap_err()
        ));
    }
    let finals = t.replies.iter().filter(|r| r.is_final()).count();
    match (finals, t.replies.last().is_some_and(|r| r.is_final())) {
        (0, _) => Err(format!("no result or error reply ({})", t.kinds())),
        (1, true) => Ok(()),
        (1, false) => Err(format!("replies after the final one: {}", t.kinds())),
        (n, _) => Err(format!(
            "{n} final replies, want exactly one: {}",
            t.kinds()
        )),
    }
}

/// The final reply is an `error` with `code` and `data.reason`.
pub fn error<'t>(t: &'t Trace, code: i64, reason: &str) -> Result<&'t WireError, String> {
    one_final_last(t)?;
    let Some(CallEvent::Error { error }) = t.final_reply().and_then(|r| r.event()) else {
        return Err(format!(
            "want an error {code} ({reason}), got: {}",
            t.kinds()
        ));
    };
    let got = error.data.as_ref().and_then(|d| d.get("reason"));
    if error.code != code || got.and_then(Value::as_str) != Some(reason) {
        return Err(format!(
            "want error {code} with data.reason {reason:?}, got {} with data.reason {} ({:?})",
            error.code,
            got.map_or("absent".to_owned(), Value::to_string),
            error.message
        ));
    }
    Ok(error)
}

/// `data.<field>` of a refusal is `want`.
pub fn data_field(e: &WireError, field: &str, want: &Value) -> Check {
    let got = e.data.as_ref().and_then(|d| d.get(field));
    match got == Some(want) {
        true => Ok(()),
        false => Err(format!("want data.{field} = {want}, got {got:?}")),
    }
}

/// The final reply is a `result`.
pub fn result(t: &Trace) -> Result<&Value, String> {
    one_final_last(t)?;
    match t.final_reply().and_then(|r| r.event()) {
        Some(CallEvent::Result { result }) => Ok(result),
        Some(CallEvent::Error { error }) => Err(format!(
            "want a result, got error {}: {}",
            error.code, error.message
        )),
        _ => Err(format!("want a result, got: {}", t.kinds())),
    }
}

/// The final reply is a tool result whose text is `text` and whose `isError` is `is_error`.
pub fn tool_result(t: &Trace, text: Option<&str>, is_error: bool) -> Check {
    let result = result(t)?;
    let got_error = result
        .get("isError")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if got_error != is_error {
        return Err(format!("want isError {is_error}, got result {result}"));
    }
    let got = texts(result);
    match text {
        Some(want) if got != [want] => Err(format!("want text {want:?}, got {got:?}")),
        None if got.iter().all(String::is_empty) => Err(format!(
            "want a text block naming the problem, got {result}"
        )),
        _ => Ok(()),
    }
}

/// The text blocks of a `CallToolResult`.
pub fn texts(result: &Value) -> Vec<String> {
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|b| b["text"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The worker settled the message with `want` (first settlement seen), for delivery
/// `delivery`.
pub fn settled(t: &Trace, want: AckKind, delivery: u64) -> Check {
    match t.settled() {
        None => Err(format!("the message was never settled (want {want:?})")),
        Some(a) if a.kind != want => Err(format!(
            "the message was settled with {:?}, want {want:?}",
            a.kind
        )),
        Some(a) if a.delivered != delivery => Err(format!(
            "settled delivery {}, want delivery {delivery}",
            a.delivered
        )),
        Some(_) => Ok(()),
    }
}

/// Durable replies carry `Nats-Msg-Id: <call_id>:<delivery>:<n>`, n counting from 0 in
/// order. Nothing to check on the stateless lane.
pub fn msg_ids(t: &Trace, sent: &Sent, delivery: u64) -> Check {
    if sent.route != Route::Durable {
        return Ok(());
    }
    for (n, reply) in t.replies.iter().enumerate() {
        let want = format!("{}:{delivery}:{n}", sent.call_id);
        match &reply.msg_id {
            Some(id) if *id == want => {}
            got => {
                return Err(format!(
                    "durable reply {n} ({}) has Nats-Msg-Id {got:?}, want {want:?}",
                    reply.kind()
                ))
            }
        }
    }
    Ok(())
}

/// Runs each check in turn; the first failure is the answer.
pub fn all(checks: impl IntoIterator<Item = Check>) -> Check {
    checks.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus_schema::messages::CallReply;
    use bus_schema::names::InstanceId;

    fn trace(events: Vec<CallEvent>) -> Trace {
        let replies = events
            .into_iter()
            .enumerate()
            .map(|(at, event)| super::super::observe::Reply {
                body: Ok(CallReply {
                    protocol: bus_schema::PROTOCOL_VERSION,
                    call_id: "c".into(),
                    instance: InstanceId::new("w").unwrap(),
                    event,
                }),
                msg_id: None,
                at: at as u64,
            })
            .collect();
        Trace {
            replies,
            acks: vec![],
        }
    }

    fn result() -> CallEvent {
        CallEvent::Result {
            result: serde_json::json!({"content": []}),
        }
    }

    fn progress() -> CallEvent {
        CallEvent::Progress {
            progress: 1.0,
            total: None,
            message: None,
        }
    }

    #[test]
    fn a_call_that_ran_sends_accepted_first_unless_it_answered_at_once() {
        assert!(ran(&trace(vec![CallEvent::Accepted, result()])).is_ok());
        assert!(ran(&trace(vec![CallEvent::Accepted, progress(), result()])).is_ok());
        // PROTOCOL §5.2: the final reply alone says the call ran.
        assert!(ran(&trace(vec![result()])).is_ok());
        // Anything else before the final reply needs `accepted` before it.
        assert!(ran(&trace(vec![progress(), result()])).is_err());
        assert!(ran(&trace(vec![progress(), CallEvent::Accepted, result()])).is_err());
        assert!(ran(&trace(vec![CallEvent::Accepted])).is_err());
        assert!(ran(&trace(vec![])).is_err());
    }
}
