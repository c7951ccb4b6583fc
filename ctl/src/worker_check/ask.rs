//! Asking the client (PROTOCOL.md §10, `kit_ask`; optional: checked only when declared).
//! On the session lane the worker sends a `request` reply and waits for the answer on
//! `mcpbus.v2.answer.<pool>.<call>.<seq>`; on the stateless lane it ends the round with an
//! `InputRequiredResult` and runs again when the call is retried with `inputResponses` and
//! its own `requestState` (which a gateway would seal and unseal; the kit hands it back as
//! the worker wrote it).

use bus_schema::mcp::code::MISSING_CAPABILITY;
use bus_schema::mcp::{capability, result_type};
use bus_schema::messages::{CallEvent, ClientAnswer};
use bus_schema::PROTOCOL_VERSION;
use serde_json::{json, Value};

use super::call::CallSpec;
use super::expect::{self, Check};
use super::kit::{Kit, REPLY_WITHIN};
use super::observe::AckKind;
use super::report::Outcome;

const ELICIT_METHOD: &str = "elicitation/create";

fn requested_schema() -> Value {
    json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]})
}

/// What the kit's client answers.
fn accepted_answer() -> Value {
    json!({"action": "accept", "content": {"answer": "forty-two"}})
}

const ANSWERED: &str = "answer: forty-two";

fn ask_call() -> CallSpec {
    CallSpec::tool("kit_ask", json!({})).capabilities(json!({ capability::ELICITATION: {} }))
}

/// `Skip` unless the worker declared `kit_ask`.
pub fn skip_unless_declared(kit: &Kit) -> Option<Outcome> {
    let declared = kit
        .registered
        .as_ref()
        .and_then(|r| r.tool("kit_ask"))
        .is_some();
    (!declared).then(|| Outcome::Skip("kit_ask is not declared (optional)".to_owned()))
}

/// The elicitation the contract asks for: `message` "kit?" and the answer schema.
fn elicitation_rules(method: &str, params: &Value) -> Check {
    if method != ELICIT_METHOD
        || params.get("message") != Some(&json!("kit?"))
        || params.get("requestedSchema") != Some(&requested_schema())
    {
        return Err(format!(
            "want {ELICIT_METHOD} with message \"kit?\" and the contract's requestedSchema, got {method} {params}"
        ));
    }
    Ok(())
}

/// Session lane: `request` (seq 1), the kit answers, then the result.
pub async fn session(kit: &Kit) -> Check {
    let sent = kit.send(&ask_call().durable()).await?;
    let (t, asked) = kit
        .recorder
        .wait(&sent, REPLY_WITHIN, |t| {
            t.replies.iter().any(|r| r.kind() == "request")
        })
        .await;
    if !asked {
        return Err(format!(
            "no request reply within {REPLY_WITHIN:?} ({})",
            t.kinds()
        ));
    }
    let (seq, method, params) = t
        .replies
        .iter()
        .find_map(|r| match r.event() {
            Some(CallEvent::Request {
                seq,
                method,
                params,
            }) => Some((*seq, method.clone(), params.clone())),
            _ => None,
        })
        .expect("waited for it");
    elicitation_rules(&method, &params)?;
    let answer = ClientAnswer {
        protocol: PROTOCOL_VERSION,
        result: Some(accepted_answer()),
        error: None,
    };
    kit.bus
        .answer(&sent.call_id, seq, &answer)
        .await
        .map_err(|e| format!("the kit could not answer: {e}"))?;
    let t = kit.finish(&sent, REPLY_WITHIN).await;
    expect::all([
        expect::ran(&t),
        expect::tool_result(&t, Some(ANSWERED), false),
        expect::msg_ids(&t, &sent, 1),
        expect::settled(&t, AckKind::Ack, 1),
    ])?;
    match seq {
        1 => Ok(()),
        other => Err(format!(
            "the request has seq {other}; the contract numbers it 1"
        )),
    }
}

/// Stateless lane: an `InputRequiredResult` asking under key `answer`, then the retry with
/// the answer and the worker's `requestState` gives the result.
pub async fn stateless(kit: &Kit) -> Check {
    let (_, t) = kit.run(&ask_call()).await?;
    expect::all([expect::ran(&t), expect::settled(&t, AckKind::Ack, 1)])
        .map_err(|e| format!("first round: {e}"))?;
    let first = expect::result(&t)?;
    if !result_type::is_input_required(first) {
        return Err(format!(
            "first round: want an InputRequiredResult, got {first}"
        ));
    }
    let request = &first["inputRequests"]["answer"];
    elicitation_rules(
        request["method"].as_str().unwrap_or_default(),
        &request["params"],
    )
    .map_err(|e| format!("inputRequests.answer: {e}"))?;
    let mut retry = ask_call();
    retry.params["inputResponses"] = json!({"answer": accepted_answer()});
    if let Some(state) = first.get("requestState") {
        retry.params["requestState"] = state.clone();
    }
    let (_, t) = kit.run(&retry).await?;
    expect::all([
        expect::ran(&t),
        expect::tool_result(&t, Some(ANSWERED), false),
        expect::settled(&t, AckKind::Ack, 1),
    ])
    .map_err(|e| format!("retry: {e}"))
}

/// A client without the elicitation capability gets -32021 (stateless lane).
pub async fn missing_capability(kit: &Kit) -> Check {
    let spec = ask_call().capabilities(json!({}));
    let (_, t) = kit.run(&spec).await?;
    expect::ran(&t)?;
    match t.final_reply().and_then(|r| r.event()) {
        Some(CallEvent::Error { error }) if error.code == MISSING_CAPABILITY => {
            expect::settled(&t, AckKind::Ack, 1)
        }
        _ => Err(format!(
            "want error {MISSING_CAPABILITY}, got: {}",
            t.kinds()
        )),
    }
}
