//! Tasks on the 2025-11-25 session lane: task-augmented `tools/call` (the client asks with
//! `params.task`), `tasks/get`, `tasks/result` and `tasks/cancel`.
//!
//! The same records and stored replies as the 2026-07-28 extension (`crate::tasks`), with
//! this revision's shapes: `CreateTaskResult` wraps the task, a tool error is `failed`,
//! `tasks/result` blocks until the task ends and carries the worker's questions (elicitation,
//! sampling, roots) on its stream meanwhile, and cancelling a finished task is -32602. Tasks
//! are bound to the session that made them. `tasks/list` is not offered: it would need a
//! per-session index, and the capability is optional.

use axum::http::StatusCode;
use axum::response::Response;
use bus_schema::subjects;
use serde_json::{json, Value};

use super::jsonrpc::{error_response, json_response, result_message, Request};
use super::methods::Caller;
use super::reply::{CallFeed, CallReply};
use super::tasks::{create_task, NewTask};
use crate::catalog::ToolRoute;
use crate::error::{code, McpError};
use crate::route::unix_ms;
use crate::server::App;
use crate::session::SessionId;
use crate::stream::RequestStream;
use crate::tasks::{is_pending_question, TaskRecord, TaskStatus};

/// What a 2025-11-25 server declares about tasks: tool calls may be tasks, and be cancelled.
pub fn capability() -> Value {
    json!({"cancel": {}, "requests": {"tools": {"call": {}}}})
}

/// -32601 for a tool called the wrong way for its `execution.taskSupport`.
pub fn wrong_mode(tool: &str, as_task: bool) -> McpError {
    let message = if as_task {
        format!("tool {tool:?} does not support being called as a task")
    } else {
        format!("tool {tool:?} can only be called as a task (params.task)")
    };
    McpError::new(StatusCode::OK, code::METHOD_NOT_FOUND, message)
}

/// A task-augmented `tools/call`: queued under a new task, answered with `CreateTaskResult`.
pub async fn call(
    app: &App,
    r: &Request,
    route: ToolRoute,
    caller: Caller,
    session: &SessionId,
) -> Response {
    let task_id = uuid::Uuid::new_v4().simple().to_string();
    let client_capabilities = caller.client_capabilities.clone();
    let spec = caller.spec(r);
    let started = super::tasks::start_round(app, &route, spec, &task_id, r.id.clone(), None).await;
    let stream = match started {
        Ok(s) => s,
        Err(e) => return error_response(&r.id, &e.into()),
    };
    let max_ttl = app.config.task_ttl.as_millis() as u64;
    let ttl_ms = r
        .params
        .pointer("/task/ttl")
        .and_then(Value::as_u64)
        .map_or(max_ttl, |t| t.clamp(1_000, max_ttl));
    let task = NewTask {
        task_id,
        ttl_ms,
        route: &route,
        params: r.params.clone(),
        client_capabilities,
        session: Some(session.as_str().to_owned()),
    };
    let record = match create_task(app, task, &stream).await {
        Ok(record) => record,
        Err(e) => return error_response(&r.id, &e),
    };
    let result = json!({"task": record.legacy_task(TaskStatus::Working)});
    json_response(StatusCode::OK, &result_message(&r.id, result))
}

/// `tasks/get`, `tasks/result`, `tasks/cancel` of a 2025-11-25 session.
pub async fn handle(app: &App, r: &Request, session: &SessionId) -> Response {
    let Some(id) = r.params.get("taskId").and_then(Value::as_str) else {
        let e = McpError::invalid_params("Invalid params: taskId must be a string");
        return error_response(&r.id, &e);
    };
    let current = match app.tasks.current(id, unix_ms()).await {
        Ok(c) => c,
        Err(e) => return error_response(&r.id, &McpError::internal(e.to_string())),
    };
    // Another session's task is as unknown as a task that never was.
    let Some((mut record, revision)) =
        current.filter(|(t, _)| t.session.as_deref() == Some(session.as_str()))
    else {
        let e = McpError::invalid_params(format!("Unknown task: {id}"));
        return error_response(&r.id, &e);
    };
    match r.method.as_str() {
        "tasks/get" => {
            let status = shown_status(app, &record).await;
            json_response(
                StatusCode::OK,
                &result_message(&r.id, record.legacy_task(status)),
            )
        }
        "tasks/result" => result(app, r, record).await,
        _ => {
            if record.status.is_terminal() {
                let e = McpError::invalid_params(format!(
                    "Task {id} already ended ({:?}); it cannot be cancelled",
                    record.status
                ));
                return error_response(&r.id, &e);
            }
            record.status = TaskStatus::Cancelled;
            record.updated_ms = unix_ms();
            match app.tasks.replace(&record, revision).await {
                Ok(Some(_)) => {
                    app.tasks.stop_round(&record).await;
                    let task = record.legacy_task(TaskStatus::Cancelled);
                    json_response(StatusCode::OK, &result_message(&r.id, task))
                }
                Ok(None) => {
                    let e = McpError::internal("the task changed meanwhile; try again")
                        .with_status(StatusCode::CONFLICT);
                    error_response(&r.id, &e)
                }
                Err(e) => error_response(&r.id, &McpError::internal(e.to_string())),
            }
        }
    }
}

/// A working task waiting for the client's answer shows as `input_required`.
async fn shown_status(app: &App, record: &TaskRecord) -> TaskStatus {
    if record.status != TaskStatus::Working {
        return record.status;
    }
    let scope = subjects::task_scope(&record.task_id);
    match app.events.last_event(&scope, &record.call_id).await {
        Ok(Some((_, last))) if is_pending_question(&last) => TaskStatus::InputRequired,
        _ => TaskStatus::Working,
    }
}

/// `tasks/result`: what the call itself would have answered, once it ends. Until then the
/// response is a stream carrying the worker's questions (from the pending one on).
async fn result(app: &App, r: &Request, record: TaskRecord) -> Response {
    match record.status {
        TaskStatus::Completed | TaskStatus::Failed => {
            if let Some(mut result) = record.result {
                super::reply::relate_to_task(&mut result, &record.task_id);
                return json_response(StatusCode::OK, &result_message(&r.id, result));
            }
            let error = record.error.unwrap_or_else(|| json!({}));
            let mut e = McpError::internal(error["message"].as_str().unwrap_or("the task failed"));
            e.code = error["code"].as_i64().unwrap_or(code::INTERNAL_ERROR);
            e.data = error.get("data").cloned();
            return error_response(&r.id, &e);
        }
        TaskStatus::Cancelled => {
            let e = McpError::invalid_params(format!(
                "Task {} was cancelled; it has no result",
                record.task_id
            ));
            return error_response(&r.id, &e);
        }
        TaskStatus::Working | TaskStatus::InputRequired => {}
    }
    let scope = subjects::task_scope(&record.task_id);
    // Replay from the pending question if there is one, so nothing answered is asked again.
    let after = match app.events.last_event(&scope, &record.call_id).await {
        Ok(Some((seq, last))) if is_pending_question(&last) => seq - 1,
        Ok(Some((seq, _))) => seq,
        Ok(None) => 0,
        Err(e) => return error_response(&r.id, &McpError::internal(e.to_string())),
    };
    let stream = match RequestStream::resume(&app.events, &scope, &record.call_id, after).await {
        Ok(s) => s,
        Err(e) => return error_response(&r.id, &McpError::internal(e.to_string())),
    };
    let reply = CallReply {
        id: r.id.clone(),
        progress_token: None,
        min_log: None,
        finish: |_| {},
        extra: None,
        mrtr: None,
        related_task: Some(record.task_id.clone()),
    };
    reply.sse(
        CallFeed::Stored(Box::new(stream)),
        app.config.sse_keep_alive,
        app.release.clone(),
    )
}
