//! Whether a call pulled from the queue may run, and what it runs: every refusal a worker
//! gives before any handler code starts, with the JSON-RPC error the client gets for it.

use bus_schema::mcp::code::{INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, RESOURCE_NOT_FOUND};
use bus_schema::mcp::Method;
use bus_schema::messages::{CallRequest, Lane, WireError};
use bus_schema::refusal::reason;
use serde_json::{json, Value};

use crate::catalogue::Contents;
use crate::clock;
use crate::job::Job;

/// Run the job, or refuse the call with this error.
pub(crate) enum Decision {
    Run(Job),
    Refuse(WireError),
}

/// Checks everything that can refuse a call before it runs, and finds its handler.
pub(crate) fn decide(served: &Contents, req: &CallRequest, delivered: i64) -> Decision {
    if req.deadline_ms <= clock::now_ms() {
        return Decision::Refuse(wire(
            INTERNAL_ERROR,
            "the call's deadline passed before a worker picked it up".into(),
            Some(json!({"reason": reason::DEADLINE_PASSED})),
        ));
    }
    let param = |key: &str| {
        req.params
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    match Method::parse(&req.method) {
        Some(Method::ToolsCall) => {
            let name = param("name");
            let Some(tool) = served.tools.get(name) else {
                return Decision::Refuse(wire(
                    INVALID_PARAMS,
                    format!("Unknown tool: {name}"),
                    Some(json!({"reason": reason::UNKNOWN_TOOL, "tool": name})),
                ));
            };
            if delivered > 1 && !tool.idempotent() {
                return Decision::Refuse(wire(
                    INTERNAL_ERROR,
                    format!(
                        "the worker running tool {name:?} stopped before answering; the tool is not \
                         idempotent (annotations.idempotentHint), so it was not run again"
                    ),
                    Some(json!({"reason": reason::WORKER_LOST, "tool": name})),
                ));
            }
            Decision::Run(Job::Tool(tool.clone()))
        }
        Some(Method::ResourcesRead) => {
            let uri = param("uri");
            match served.resources.values().find(|r| r.serves(uri)) {
                Some(r) => Decision::Run(Job::Read(r.clone(), uri.to_owned())),
                None => Decision::Refuse(resource_not_found(req, uri)),
            }
        }
        Some(Method::PromptsGet) => {
            let name = param("name");
            let Some(prompt) = served.prompts.get(name) else {
                return Decision::Refuse(wire(
                    INVALID_PARAMS,
                    format!("Unknown prompt: {name}"),
                    Some(json!({"reason": reason::UNKNOWN_PROMPT, "prompt": name})),
                ));
            };
            let args = req
                .params
                .get("arguments")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(missing) = prompt
                .required()
                .into_iter()
                .find(|a| !args.contains_key(a))
            {
                return Decision::Refuse(wire(
                    INVALID_PARAMS,
                    format!("prompt {name:?} needs argument {missing:?}"),
                    None,
                ));
            }
            Decision::Run(Job::Prompt(prompt.clone(), args))
        }
        Some(Method::CompletionComplete) => {
            let reference = &req.params["ref"];
            let completer = match reference["type"].as_str() {
                Some("ref/prompt") => reference["name"]
                    .as_str()
                    .and_then(|n| served.prompts.get(n))
                    .map(|p| p.complete.clone()),
                Some("ref/resource") => reference["uri"]
                    .as_str()
                    .and_then(|u| served.resources.get(u))
                    .map(|r| r.complete.clone()),
                _ => None,
            };
            let Some(completer) = completer else {
                return Decision::Refuse(wire(
                    INVALID_PARAMS,
                    format!("Unknown completion reference {reference}"),
                    Some(json!({"reason": reason::UNKNOWN_COMPLETION})),
                ));
            };
            let argument = &req.params["argument"];
            let values = completer
                .map(|f| {
                    f(
                        argument["name"].as_str().unwrap_or_default(),
                        argument["value"].as_str().unwrap_or_default(),
                    )
                })
                .unwrap_or_default();
            Decision::Run(Job::Complete(values))
        }
        _ => Decision::Refuse(wire(
            METHOD_NOT_FOUND,
            format!("worker does not serve method {:?}", req.method),
            Some(json!({"reason": reason::UNKNOWN_METHOD, "method": req.method})),
        )),
    }
}

/// An unknown resource: -32002 in the 2025 revisions, -32602 from 2026-07-28 on, with the URI.
fn resource_not_found(req: &CallRequest, uri: &str) -> WireError {
    let code = if req.lane == Lane::Session {
        RESOURCE_NOT_FOUND
    } else {
        INVALID_PARAMS
    };
    wire(
        code,
        format!("Resource not found: {uri}"),
        Some(json!({"reason": reason::UNKNOWN_RESOURCE, "uri": uri})),
    )
}

pub(crate) fn wire(code: i64, message: String, data: Option<Value>) -> WireError {
    WireError {
        code,
        message,
        data,
    }
}
