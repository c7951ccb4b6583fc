//! Calls a worker must refuse without running them (PROTOCOL.md §5.8): one error
//! reply with the row's code and `data.reason`, no `accepted`, id n=0 on durable replies,
//! then TERM. And unreadable messages: no reply at all, TERM.

use bus_schema::mcp::code::{INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, RESOURCE_NOT_FOUND};
use bus_schema::mcp::Method;
use bus_schema::refusal::reason;
use bus_schema::subjects;
use serde_json::{json, Value};

use super::bus::random_hex;
use super::call::{CallSpec, Route, Sent};
use super::expect::{self, Check};
use super::kit::{Kit, REPLY_WITHIN};
use super::observe::{AckKind, Trace};

/// What a refusal must look like.
struct Refusal<'a> {
    code: i64,
    reason: &'a str,
    /// Other `data` fields the row names.
    data: Vec<(&'a str, Value)>,
}

fn refusal_rules(sent: &Sent, t: &Trace, want: &Refusal) -> Check {
    expect::not_accepted(t)?;
    let error = expect::error(t, want.code, want.reason)?;
    for (field, value) in &want.data {
        expect::data_field(error, field, value)?;
    }
    expect::all([
        expect::msg_ids(t, sent, 1),
        expect::settled(t, AckKind::Term, 1),
    ])
}

/// Sends `spec` on both lanes; each must be refused as `want(route)` says.
async fn refused_on_both(
    kit: &Kit,
    spec: CallSpec,
    want: impl Fn(Route) -> Refusal<'static>,
) -> Check {
    refused_either(kit, spec, |route| vec![want(route)]).await
}

/// Like [`refused_on_both`], where any of several refusals is right.
async fn refused_either(
    kit: &Kit,
    spec: CallSpec,
    wants: impl Fn(Route) -> Vec<Refusal<'static>>,
) -> Check {
    for route in Route::BOTH {
        let (sent, t) = kit.run(&spec.clone().on(route)).await?;
        let mut first = None;
        for want in wants(route) {
            match refusal_rules(&sent, &t, &want) {
                Ok(()) => {
                    first = None;
                    break;
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first {
            return Err(format!("{} lane: {e}", route.name()));
        }
    }
    Ok(())
}

/// What a worker that serves no prompts (or resources) at all may answer instead: the
/// method is one it does not serve (PROTOCOL.md §5.8, "unknown method").
fn method_not_served(method: Method) -> Refusal<'static> {
    Refusal {
        code: METHOD_NOT_FOUND,
        reason: reason::UNKNOWN_METHOD,
        data: vec![("method", json!(method.as_str()))],
    }
}

pub async fn unknown_tool(kit: &Kit) -> Check {
    refused_on_both(kit, CallSpec::tool("kit_no_such_tool", json!({})), |_| {
        Refusal {
            code: INVALID_PARAMS,
            reason: reason::UNKNOWN_TOOL,
            data: vec![("tool", json!("kit_no_such_tool"))],
        }
    })
    .await
}

pub async fn unknown_method(kit: &Kit) -> Check {
    refused_on_both(
        kit,
        CallSpec::method("kit/no_such_method", json!({})),
        |_| Refusal {
            code: METHOD_NOT_FOUND,
            reason: reason::UNKNOWN_METHOD,
            data: vec![("method", json!("kit/no_such_method"))],
        },
    )
    .await
}

/// -32602 `unknown_prompt`; a worker serving no prompts may answer "unknown method".
pub async fn unknown_prompt(kit: &Kit) -> Check {
    let spec = CallSpec::method(
        Method::PromptsGet.as_str(),
        json!({"name": "kit_no_such_prompt"}),
    );
    refused_either(kit, spec, |_| {
        vec![
            Refusal {
                code: INVALID_PARAMS,
                reason: reason::UNKNOWN_PROMPT,
                data: vec![("prompt", json!("kit_no_such_prompt"))],
            },
            method_not_served(Method::PromptsGet),
        ]
    })
    .await
}

/// -32002 on the session lane, -32602 on the stateless one, with `data.uri`; a worker
/// serving no resources may answer "unknown method".
pub async fn unknown_resource(kit: &Kit) -> Check {
    let uri = "kit://no-such-resource";
    let spec = CallSpec::method(Method::ResourcesRead.as_str(), json!({"uri": uri}));
    refused_either(kit, spec, |route| {
        vec![
            Refusal {
                code: match route {
                    Route::Durable => RESOURCE_NOT_FOUND,
                    Route::Stateless => INVALID_PARAMS,
                },
                reason: reason::UNKNOWN_RESOURCE,
                data: vec![("uri", json!(uri))],
            },
            method_not_served(Method::ResourcesRead),
        ]
    })
    .await
}

/// -32602 `unknown_completion_ref`; a worker serving no prompts or resources may answer
/// "unknown method".
pub async fn unknown_completion_ref(kit: &Kit) -> Check {
    let params = json!({"ref": {"type": "ref/prompt", "name": "kit_no_such_prompt"},
        "argument": {"name": "x", "value": ""}});
    let spec = CallSpec::method(Method::CompletionComplete.as_str(), params);
    refused_either(kit, spec, |_| {
        vec![
            Refusal {
                code: INVALID_PARAMS,
                reason: reason::UNKNOWN_COMPLETION,
                data: vec![],
            },
            method_not_served(Method::CompletionComplete),
        ]
    })
    .await
}

pub async fn deadline_before_start(kit: &Kit) -> Check {
    let spec = CallSpec::tool("kit_echo", json!({"text": "too late"})).deadline_in_ms(-1000);
    refused_on_both(kit, spec, |_| Refusal {
        code: INTERNAL_ERROR,
        reason: reason::DEADLINE_PASSED,
        data: vec![],
    })
    .await
}

/// A call body changed by `edit` after it was built, queued as it is.
async fn run_edited(
    kit: &Kit,
    spec: &CallSpec,
    edit: impl Fn(&mut Value),
) -> Result<(Sent, Trace), String> {
    let request = spec.request(&kit.bus);
    let mut body = serde_json::to_value(&request).expect("a request is JSON");
    edit(&mut body);
    let seq = kit
        .bus
        .queue_raw(&request.call_id, serde_json::to_vec(&body).expect("JSON"))
        .await
        .map_err(|e| format!("the kit could not queue the call: {e:#}"))?;
    let sent = Sent {
        call_id: request.call_id.clone(),
        seq,
        route: spec.route,
        request,
    };
    let trace = kit.finish(&sent, REPLY_WITHIN).await;
    Ok((sent, trace))
}

pub async fn unknown_protocol(kit: &Kit) -> Check {
    for route in Route::BOTH {
        let spec = CallSpec::tool("kit_echo", json!({"text": "from the future"})).on(route);
        let (sent, t) = run_edited(kit, &spec, |b| b["protocol"] = json!(99)).await?;
        let want = Refusal {
            code: INTERNAL_ERROR,
            reason: reason::UNSUPPORTED_PROTOCOL,
            data: vec![("protocol", json!(99))],
        };
        refusal_rules(&sent, &t, &want).map_err(|e| format!("{} lane: {e}", route.name()))?;
    }
    // Absent, the protocol is 2: the call runs.
    let spec = CallSpec::tool("kit_echo", json!({"text": "no protocol field"}));
    let (_, t) = run_edited(kit, &spec, |b| {
        b.as_object_mut().map(|o| o.remove("protocol"));
    })
    .await?;
    expect::all([
        expect::ran(&t),
        expect::tool_result(&t, Some("no protocol field"), false),
        expect::settled(&t, AckKind::Ack, 1),
    ])
    .map_err(|e| format!("a call without `protocol` (which means 2): {e}"))
}

/// A change to a call's body.
type Edit = fn(&mut Value);

/// Readable ids, but a known field of the wrong type, a required one missing, or a
/// malformed principal.
pub async fn malformed_call(kit: &Kit) -> Check {
    let cases: [(&str, Edit); 4] = [
        ("deadline_ms is a string", |b| {
            b["deadline_ms"] = json!("soon")
        }),
        ("method is missing", |b| {
            b.as_object_mut().map(|o| o.remove("method"));
        }),
        ("principal is a string", |b| b["principal"] = json!("alice")),
        ("protocol is a string", |b| b["protocol"] = json!("2")),
    ];
    for (case, edit) in cases {
        for route in Route::BOTH {
            let spec = CallSpec::tool("kit_echo", json!({"text": "malformed"})).on(route);
            let (sent, t) = run_edited(kit, &spec, edit).await?;
            let want = Refusal {
                code: INTERNAL_ERROR,
                reason: reason::MALFORMED_CALL,
                data: vec![],
            };
            refusal_rules(&sent, &t, &want)
                .map_err(|e| format!("{case}, {} lane: {e}", route.name()))?;
        }
    }
    Ok(())
}

/// Bodies with nobody to answer: TERM and no reply; then an ordinary call still works.
pub async fn unreadable_message(kit: &Kit) -> Check {
    let orphan = random_hex();
    let reply_to = subjects::call_reply(&kit.bus.pool, &kit.bus.gateway, &orphan);
    let cases: [(&str, Vec<u8>); 3] = [
        ("a body that is not JSON", b"kit: this is not JSON".to_vec()),
        (
            "a body without call_id",
            serde_json::to_vec(
                &json!({"protocol": 2, "method": "tools/call", "reply_to": reply_to,
                "params": {"name": "kit_echo", "arguments": {"text": "x"}}}),
            )
            .expect("JSON"),
        ),
        (
            "a body whose reply_to is not a string",
            serde_json::to_vec(
                &json!({"protocol": 2, "call_id": orphan, "method": "tools/call", "reply_to": 7,
                "params": {"name": "kit_echo", "arguments": {"text": "x"}}}),
            )
            .expect("JSON"),
        ),
    ];
    for (case, body) in cases {
        let seq = kit
            .bus
            .queue_raw(&random_hex(), body)
            .await
            .map_err(|e| format!("the kit could not queue a message: {e:#}"))?;
        let sent = Sent {
            call_id: orphan.clone(),
            seq,
            route: Route::Stateless,
            request: CallSpec::tool("kit_echo", json!({})).request(&kit.bus),
        };
        let t = kit.until_settled(&sent, REPLY_WITHIN).await;
        expect::settled(&t, AckKind::Term, 1).map_err(|e| format!("{case}: {e}"))?;
        if !t.replies.is_empty() {
            return Err(format!(
                "{case}: nobody can be answered, yet the worker replied: {}",
                t.kinds()
            ));
        }
    }
    let (_, t) = kit
        .run(&CallSpec::tool("kit_echo", json!({"text": "still here"})))
        .await?;
    expect::all([
        expect::ran(&t),
        expect::tool_result(&t, Some("still here"), false),
        expect::settled(&t, AckKind::Ack, 1),
    ])
    .map_err(|e| format!("an ordinary call after the unreadable ones: {e}"))
}
