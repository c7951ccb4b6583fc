//! Asking the client for input on the 2026-07-28 lane: multi round-trip requests (MRTR).
//!
//! The handler runs once per round. Answers from earlier rounds come back inside the
//! `requestState` (sealed by the gateway, so the client cannot alter them), answers to the
//! latest questions in `inputResponses`. The first question without an answer ends the round
//! with an `InputRequiredResult` carrying every answer so far.

use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::call_error::InputRequired;

/// One question for the client: an `inputRequests` entry.
#[derive(Debug, Clone)]
pub struct Ask {
    pub(crate) key: String,
    pub(crate) method: String,
    pub(crate) params: Value,
}

impl Ask {
    /// `key` names the question in `inputRequests` (unique within the request); `method` is
    /// `elicitation/create`, `sampling/createMessage` or `roots/list`.
    pub fn new(key: &str, method: &str, params: Value) -> Self {
        Self {
            key: key.to_owned(),
            method: method.to_owned(),
            params,
        }
    }
}

/// The answers one run of a handler can draw on.
#[derive(Debug, Default)]
pub(crate) struct Rounds {
    /// Settled in earlier rounds, plus those this run used so far.
    carried: Mutex<Map<String, Value>>,
    /// What the client sent with this retry.
    fresh: Map<String, Value>,
    /// Whether the request carried a `requestState` (the gateway verified it).
    pub(crate) resumed: bool,
}

/// The SDK's own `requestState`: `{"answers": {key: answer}}`.
const ANSWERS: &str = "answers";

impl Rounds {
    /// From the params of a request as the gateway forwarded it.
    pub(crate) fn from_params(params: &Value) -> Self {
        let state = params.get("requestState");
        let carried = state
            .and_then(|s| s.get(ANSWERS))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let fresh = params
            .get("inputResponses")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Self {
            carried: Mutex::new(carried),
            fresh,
            resumed: state.is_some(),
        }
    }

    /// The answers to `asks` in order, or the `InputRequiredResult` asking for those missing.
    /// Keys the handler never asks about are ignored, as the spec asks.
    pub(crate) fn answers(&self, asks: Vec<Ask>) -> Result<Vec<Value>, InputRequired> {
        let mut carried = self
            .carried
            .lock()
            .expect("never poisoned: no panics inside");
        let mut answers = Vec::with_capacity(asks.len());
        let mut missing = Map::new();
        for ask in asks {
            let known = carried
                .get(&ask.key)
                .or_else(|| self.fresh.get(&ask.key))
                .cloned();
            match known {
                Some(answer) => {
                    carried.insert(ask.key, answer.clone());
                    answers.push(answer);
                }
                None => {
                    missing.insert(ask.key, json!({"method": ask.method, "params": ask.params}));
                }
            }
        }
        if missing.is_empty() {
            return Ok(answers);
        }
        Err(InputRequired {
            result: json!({
                "resultType": "input_required",
                "inputRequests": missing,
                "requestState": {ANSWERS: *carried},
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(key: &str) -> Ask {
        Ask::new(key, "elicitation/create", json!({"message": key}))
    }

    fn input_required(e: InputRequired) -> Value {
        e.result
    }

    #[test]
    fn the_first_round_asks_for_everything_missing() {
        let r = Rounds::from_params(&json!({}));
        let ir = input_required(r.answers(vec![ask("a"), ask("b")]).unwrap_err());
        assert_eq!(ir["resultType"], "input_required");
        assert_eq!(ir["inputRequests"]["a"]["method"], "elicitation/create");
        assert_eq!(ir["inputRequests"]["b"]["params"]["message"], "b");
        assert_eq!(ir["requestState"], json!({"answers": {}}));
        assert!(!r.resumed);
    }

    #[test]
    fn answers_accumulate_across_rounds() {
        // Round 2: the client answers "a"; the handler then asks "b".
        let r = Rounds::from_params(&json!({
            "requestState": {"answers": {}},
            "inputResponses": {"a": {"action": "accept"}, "extra": {"ignored": true}},
        }));
        assert!(r.resumed);
        assert_eq!(
            r.answers(vec![ask("a")]).unwrap(),
            vec![json!({"action": "accept"})]
        );
        let ir = input_required(r.answers(vec![ask("b")]).unwrap_err());
        assert_eq!(
            ir["requestState"],
            json!({"answers": {"a": {"action": "accept"}}})
        );
        // Round 3: "a" comes from the state, "b" from the retry.
        let r = Rounds::from_params(&json!({
            "requestState": ir["requestState"],
            "inputResponses": {"b": {"action": "decline"}},
        }));
        assert_eq!(
            r.answers(vec![ask("a"), ask("b")]).unwrap(),
            vec![json!({"action": "accept"}), json!({"action": "decline"})]
        );
    }

    #[test]
    fn a_missing_answer_is_asked_again() {
        let r = Rounds::from_params(&json!({"inputResponses": {"wrong": {"action": "accept"}}}));
        let ir = input_required(r.answers(vec![ask("a")]).unwrap_err());
        assert!(ir["inputRequests"].get("a").is_some());
        assert!(ir["inputRequests"].get("wrong").is_none());
    }
}
