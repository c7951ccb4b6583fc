//! How a worker refuses a call it will not run: the `data.reason` of each refusal in the
//! outcome table (PROTOCOL.md §5.8), and what can still be read of a call that does not
//! decode, so that its client gets an answer instead of waiting for its timeout.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::mcp::code::INTERNAL_ERROR;
use crate::messages::WireError;
use crate::PROTOCOL_VERSION;

/// `data.reason` values of the errors a worker answers instead of running a call.
pub mod reason {
    /// The body names a protocol version the worker does not speak.
    pub const UNSUPPORTED_PROTOCOL: &str = "unsupported_protocol";
    /// The body's envelope is readable but a field is missing or of the wrong type
    /// (including a malformed `principal`).
    pub const MALFORMED_CALL: &str = "malformed_call";
    /// `deadline_ms` had passed when the worker received the call.
    pub const DEADLINE_PASSED: &str = "deadline_passed";
    /// A redelivered call of a tool that is not idempotent.
    pub const WORKER_LOST: &str = "worker_lost";
    pub const UNKNOWN_TOOL: &str = "unknown_tool";
    pub const UNKNOWN_METHOD: &str = "unknown_method";
    pub const UNKNOWN_PROMPT: &str = "unknown_prompt";
    pub const UNKNOWN_RESOURCE: &str = "unknown_resource";
    pub const UNKNOWN_COMPLETION: &str = "unknown_completion_ref";
    /// A non-tool handler failed unexpectedly (a panic or an exception).
    pub const INTERNAL: &str = "internal";
}

/// The part of a call a worker needs in order to answer it: read even when the rest of the
/// body is not understood.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallEnvelope {
    #[serde(default)]
    pub protocol: Option<Value>,
    pub call_id: String,
    pub reply_to: String,
    #[serde(default)]
    pub reply_durable: bool,
}

/// The answer to a call body that did not decode as a `CallRequest`, or `None` when not even
/// its `call_id` and `reply_to` can be read: then nobody can be answered, and the worker
/// only terminates the message.
pub fn unreadable_call(body: &[u8]) -> Option<(CallEnvelope, WireError)> {
    let envelope: CallEnvelope = serde_json::from_slice(body).ok()?;
    let error = match &envelope.protocol {
        // An integer other than ours; any other type is a malformed field.
        Some(v) if v.is_u64() && v.as_u64() != Some(u64::from(PROTOCOL_VERSION)) => WireError {
            code: INTERNAL_ERROR,
            message: format!(
                "the call was written in worker protocol {v}; this worker speaks {PROTOCOL_VERSION}"
            ),
            data: Some(json!({"reason": reason::UNSUPPORTED_PROTOCOL, "protocol": v})),
        },
        _ => WireError {
            code: INTERNAL_ERROR,
            message: "the call's message is malformed; the worker did not run it".into(),
            data: Some(json!({"reason": reason::MALFORMED_CALL})),
        },
    };
    Some((envelope, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_without_an_envelope_cannot_be_answered() {
        assert_eq!(unreadable_call(b"not json"), None);
        assert_eq!(unreadable_call(br#"{"call_id": "c"}"#), None);
        assert_eq!(unreadable_call(br#"{"call_id": 1, "reply_to": "r"}"#), None);
    }

    #[test]
    fn an_unknown_version_is_named_in_the_answer() {
        let (env, err) =
            unreadable_call(br#"{"protocol": 9, "call_id": "c", "reply_to": "r"}"#).unwrap();
        assert_eq!((env.call_id.as_str(), env.reply_to.as_str()), ("c", "r"));
        assert_eq!(err.code, INTERNAL_ERROR);
        assert_eq!(err.data.unwrap()["reason"], reason::UNSUPPORTED_PROTOCOL);
    }

    #[test]
    fn a_bad_field_is_a_malformed_call() {
        let body = br#"{"protocol": 2, "call_id": "c", "reply_to": "r", "reply_durable": true, "principal": 5}"#;
        let (env, err) = unreadable_call(body).unwrap();
        assert!(env.reply_durable);
        assert_eq!(err.data.unwrap()["reason"], reason::MALFORMED_CALL);
        let body = br#"{"protocol": "2", "call_id": "c", "reply_to": "r"}"#;
        let (_, err) = unreadable_call(body).unwrap();
        assert_eq!(err.data.unwrap()["reason"], reason::MALFORMED_CALL);
    }
}
