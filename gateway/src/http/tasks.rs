//! The tasks extension (`io.modelcontextprotocol/tasks`) on the 2026-07-28 lane:
//! `tools/call` that becomes a task, `tasks/get`, `tasks/update` and `tasks/cancel`.
//!
//! A call of a tool that supports tasks, from a client that takes them, is queued with a
//! task id and its replies stored under the task's scope. It stays an ordinary call until
//! the worker escalates it; then the task record is stored and the client gets a
//! `CreateTaskResult`. State lives in JetStream (see `crate::tasks`), so every later request
//! about the task may reach any gateway.

use axum::http::StatusCode;
use axum::response::Response;
use bus_schema::subjects;
use serde_json::{json, Map, Value};

use super::jsonrpc::{error_response, json_response, result_message, Request};
use super::methods::Caller;
use super::mrtr::Mrtr;
use super::reply::CallReply;
use super::stateless_lane::finish;
use super::version::meta;
use crate::catalog::{Lookup, ToolRoute};
use crate::error::{code, McpError};
use crate::route::{unix_ms, CallSpec, CallUpdate, RouteError};
use crate::server::App;
use crate::stream::{RequestStream, StreamOrigin};
use crate::tasks::{TaskRecord, TaskStatus, EXTENSION};

/// `execution.taskSupport` of a tool: `forbidden` (the default), `optional` or `required`.
pub fn task_support(route: &ToolRoute) -> &str {
    route
        .tool
        .get("execution")
        .and_then(|e| e.get("taskSupport"))
        .and_then(Value::as_str)
        .unwrap_or("forbidden")
}

/// Whether the request's client capabilities take tasks.
pub fn client_takes_tasks(r: &Request) -> bool {
    r.meta(meta::CLIENT_CAPABILITIES)
        .and_then(|c| c.get("extensions"))
        .and_then(|e| e.get(EXTENSION))
        .is_some()
}

/// -32021 naming the extension: what a client that did not declare it gets.
pub fn missing_extension(what: &str) -> McpError {
    McpError::new(
        StatusCode::BAD_REQUEST,
        code::MISSING_CAPABILITY,
        format!("{what} needs the {EXTENSION} extension, which the client did not declare"),
    )
    .with_data(json!({"requiredCapabilities": {"extensions": {EXTENSION: {}}}}))
}

/// `tools/call` that may become a task.
pub async fn call(
    app: &App,
    r: &Request,
    route: ToolRoute,
    caller: Caller,
    mrtr: Option<Mrtr>,
) -> Response {
    let task_id = uuid::Uuid::new_v4().simple().to_string();
    let client_capabilities = caller.client_capabilities.clone();
    let spec = caller.spec(r);
    // Later rounds start from the call as first made, without this round's answers.
    let mut params = r.params.clone();
    if let Some(p) = params.as_object_mut() {
        p.remove("inputResponses");
        p.remove("requestState");
    }
    let started = start_round(app, &route, spec, &task_id, r.id.clone(), None).await;
    let mut stream = match started {
        Ok(s) => s,
        Err(e) => return error_response(&r.id, &e.into()),
    };
    let reply = CallReply {
        id: r.id.clone(),
        progress_token: None,
        min_log: None,
        finish,
        extra: None,
        mrtr,
        related_task: None,
    };
    // Until the worker escalates, this is an ordinary call (an MRTR round, or a result
    // fast enough not to need a task).
    while let Some((_, update)) = stream.next().await {
        match update {
            CallUpdate::Done(outcome) => return reply.done(outcome),
            CallUpdate::Escalate => {
                let task = NewTask {
                    task_id,
                    ttl_ms: app.config.task_ttl.as_millis() as u64,
                    route: &route,
                    params,
                    client_capabilities,
                    session: None,
                };
                // Durable before the client hears of it: any node can answer tasks/get now.
                let record = match create_task(app, task, &stream).await {
                    Ok(record) => record,
                    Err(e) => return error_response(&r.id, &e),
                };
                let mut result = record.create_result();
                finish(&mut result);
                return json_response(StatusCode::OK, &result_message(&r.id, result));
            }
            _ => {}
        }
    }
    error_response(
        &r.id,
        &McpError::internal("the call ended without an answer"),
    )
}

/// Queues one round of task `task_id` (its first, or the next after input): the call with
/// the task id, its replies stored under the task's scope.
pub(super) async fn start_round(
    app: &App,
    route: &ToolRoute,
    mut spec: CallSpec,
    task_id: &str,
    request_id: Value,
    call_id: Option<String>,
) -> Result<RequestStream, RouteError> {
    spec.task_id = Some(task_id.to_owned());
    let scope = subjects::task_scope(task_id);
    RequestStream::start(
        &app.events,
        &app.dispatcher,
        route,
        spec,
        app.config.default_tool_timeout,
        StreamOrigin {
            session: &scope,
            request_id,
            progress_token: None,
            call_id,
        },
    )
    .await
}

/// What a new task is, besides its first round.
pub(super) struct NewTask<'a> {
    pub task_id: String,
    pub ttl_ms: u64,
    pub route: &'a ToolRoute,
    /// The `tools/call` params every round starts from.
    pub params: Value,
    pub client_capabilities: Value,
    /// The session a 2025-11-25 task is bound to.
    pub session: Option<String>,
}

/// Stores the record of a task whose first round is `round`; if that fails the round is
/// called off, since nobody could ever ask for its result.
pub(super) async fn create_task(
    app: &App,
    task: NewTask<'_>,
    round: &RequestStream,
) -> Result<TaskRecord, McpError> {
    let now = unix_ms();
    let record = TaskRecord {
        task_id: task.task_id,
        status: TaskStatus::Working,
        created_ms: now,
        updated_ms: now,
        ttl_ms: task.ttl_ms,
        tool: task.route.name().to_owned(),
        pool: task.route.pool.clone(),
        params: task.params,
        client_capabilities: task.client_capabilities,
        call_id: round.call_id().to_owned(),
        deadline_ms: round.deadline_ms(),
        call_seq: round.queued_at(),
        input_requests: Map::new(),
        answers: Map::new(),
        request_state: None,
        result: None,
        error: None,
        session: task.session,
        status_message: None,
    };
    if let Err(e) = app.tasks.create(&record).await {
        app.tasks.stop_round(&record).await;
        return Err(McpError::internal(e.to_string()));
    }
    Ok(record)
}

/// `tasks/get`, `tasks/update`, `tasks/cancel`.
pub async fn handle(app: &App, r: &Request) -> Response {
    if !client_takes_tasks(r) {
        return error_response(&r.id, &missing_extension(&r.method));
    }
    let outcome = match r.method.as_str() {
        "tasks/get" => get(app, r).await,
        "tasks/update" => update(app, r).await,
        _ => cancel(app, r).await,
    };
    match outcome {
        Ok(mut result) => {
            finish(&mut result);
            json_response(StatusCode::OK, &result_message(&r.id, result))
        }
        Err(e) => error_response(&r.id, &e),
    }
}

fn task_id(r: &Request) -> Result<&str, McpError> {
    r.params
        .get("taskId")
        .and_then(Value::as_str)
        .ok_or_else(|| McpError::invalid_params("Invalid params: taskId must be a string"))
}

fn unknown(task_id: &str) -> McpError {
    McpError::invalid_params(format!("Unknown task: {task_id}"))
        .with_data(json!({"taskId": task_id}))
}

fn store_error(e: crate::tasks::TaskStoreError) -> McpError {
    McpError::internal(e.to_string()).with_status(StatusCode::SERVICE_UNAVAILABLE)
}

/// The acknowledgement of `tasks/update` and `tasks/cancel`: no task fields.
fn ack() -> Value {
    json!({})
}

async fn get(app: &App, r: &Request) -> Result<Value, McpError> {
    let id = task_id(r)?;
    match app
        .tasks
        .current(id, unix_ms())
        .await
        .map_err(store_error)?
    {
        Some((record, _)) => Ok(record.detailed()),
        None => Err(unknown(id)),
    }
}

async fn update(app: &App, r: &Request) -> Result<Value, McpError> {
    let id = task_id(r)?;
    let responses =
        match r.params.get("inputResponses") {
            Some(Value::Object(m)) if m.values().all(Value::is_object) => m.clone(),
            _ => return Err(McpError::invalid_params(
                "Invalid params: inputResponses must map each key to the client's result object",
            )),
        };
    for _ in 0..5 {
        let current = app
            .tasks
            .current(id, unix_ms())
            .await
            .map_err(store_error)?;
        let Some((mut record, revision)) = current else {
            return Err(unknown(id));
        };
        if record.status != TaskStatus::InputRequired {
            // Nothing is waiting for input: answers to questions not asked are ignored.
            return Ok(ack());
        }
        let mut answered = false;
        for (key, answer) in &responses {
            if record.input_requests.remove(key).is_some() {
                record.answers.insert(key.clone(), answer.clone());
                answered = true;
            }
        }
        if !answered {
            return Ok(ack());
        }
        record.updated_ms = unix_ms();
        let next_call = record
            .input_requests
            .is_empty()
            .then(crate::route::new_call_id);
        if let Some(call_id) = &next_call {
            record.status = TaskStatus::Working;
            record.call_id = call_id.clone();
            record.call_seq = 0;
        }
        // Claim the change first, so that two gateways never both start the next round.
        if app
            .tasks
            .replace(&record, revision)
            .await
            .map_err(store_error)?
            .is_none()
        {
            continue;
        }
        if let Some(call_id) = next_call {
            next_round(app, r, record, call_id).await;
        }
        return Ok(ack());
    }
    Err(McpError::internal("the task kept changing; try again").with_status(StatusCode::CONFLICT))
}

/// Runs a task's next round with the answers gathered and the worker's state.
async fn next_round(app: &App, r: &Request, mut record: TaskRecord, call_id: String) {
    let mut params = record.params.clone();
    params["inputResponses"] = Value::Object(std::mem::take(&mut record.answers));
    if let Some(state) = record.request_state.take() {
        params["requestState"] = state;
    }
    let snapshot = app.catalog.snapshot();
    let route = match snapshot.lookup(&record.tool) {
        Lookup::Live(route) => route.clone(),
        _ => return fail_round(app, &record, "no worker serves the tool any more").await,
    };
    let caller = Caller::stateless(record.client_capabilities.clone());
    let request = Request {
        id: r.id.clone(),
        method: "tools/call".into(),
        params,
    };
    let spec = caller.spec(&request);
    let started = start_round(
        app,
        &route,
        spec,
        &record.task_id,
        r.id.clone(),
        Some(call_id),
    )
    .await;
    match started {
        Ok(stream) => {
            // Record where the round sits in the queue and when it times out; a lost race
            // here only costs a cancel the chance to take the call back out of the queue.
            if let Ok(Some((mut current, revision))) = app.tasks.get(&record.task_id).await {
                if current.call_id == stream.call_id() {
                    current.call_seq = stream.queued_at();
                    current.deadline_ms = stream.deadline_ms();
                    let _ = app.tasks.replace(&current, revision).await;
                }
            }
        }
        Err(e) => fail_round(app, &record, &e.to_string()).await,
    }
}

/// Marks a task failed because its next round could not start.
async fn fail_round(app: &App, record: &TaskRecord, why: &str) {
    if let Ok(Some((mut current, revision))) = app.tasks.get(&record.task_id).await {
        current.status = TaskStatus::Failed;
        current.updated_ms = unix_ms();
        current.error = Some(json!({"code": code::INTERNAL_ERROR,
            "message": format!("the task's next round could not start: {why}")}));
        let _ = app.tasks.replace(&current, revision).await;
    }
}

async fn cancel(app: &App, r: &Request) -> Result<Value, McpError> {
    let id = task_id(r)?;
    for _ in 0..5 {
        // Up to date first: a round that already finished makes the task terminal.
        let current = app
            .tasks
            .current(id, unix_ms())
            .await
            .map_err(store_error)?;
        let Some((mut record, revision)) = current else {
            return Err(unknown(id));
        };
        // Cancelling a finished task is acknowledged and changes nothing.
        if record.status.is_terminal() {
            return Ok(ack());
        }
        record.status = TaskStatus::Cancelled;
        record.updated_ms = unix_ms();
        if app
            .tasks
            .replace(&record, revision)
            .await
            .map_err(store_error)?
            .is_some()
        {
            app.tasks.stop_round(&record).await;
            return Ok(ack());
        }
    }
    Err(McpError::internal("the task kept changing; try again").with_status(StatusCode::CONFLICT))
}
