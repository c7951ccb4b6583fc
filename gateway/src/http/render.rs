//! Renders the core's answer as an HTTP response: one JSON body or an SSE stream, the
//! revision's decoration and task view, and domain errors mapped to a status and a code.
//! Both lanes render through here.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::decorate::Decoration;
use super::headers as header;
use super::jsonrpc::{error_response, json_response, result_message};
use super::listen;
use super::reply::CallReply;
use super::wire::from_core;
use crate::app::App;
use crate::core::{CallPlan, CoreError, Delivery, Outcome, Profile, TaskFlavour, TaskOutcome};
use crate::tasks::{view, TaskStatus};

/// How long a 2026-07-28 tool call waits for an immediate failure before it starts
/// streaming: such failures (a missing client capability) travel with their own status.
const EARLY_FAILURE_WINDOW: Duration = Duration::from_millis(250);

pub async fn render(
    app: &App,
    profile: &Profile,
    id: &Value,
    outcome: Result<Outcome, CoreError>,
) -> Response {
    let decoration = Decoration::new(profile, app.config.list_ttl.as_millis() as u64);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return error(id, profile, &e),
    };
    match outcome {
        Outcome::Done { mut result, cache } => {
            decoration.apply(&mut result, cache);
            ok(id, result)
        }
        Outcome::Initialized { session, result } => {
            let mut resp = ok(id, result);
            resp.headers_mut().insert(
                header::SESSION_ID,
                HeaderValue::from_str(session.as_str()).expect("session ids are header-safe"),
            );
            resp
        }
        Outcome::Call(plan) => call(app, profile, decoration, *plan).await,
        Outcome::Task(task) => {
            let mut result = task_view(profile.tasks, *task);
            decoration.apply(&mut result, crate::core::Cache::None);
            ok(id, result)
        }
        Outcome::Listen(filter, slot) => listen::open(app, id.clone(), filter, slot),
    }
}

/// A domain error as the caller's revision sends it.
pub fn error(id: &Value, profile: &Profile, e: &CoreError) -> Response {
    error_response(id, &from_core(e, profile.lane))
}

fn ok(id: &Value, result: Value) -> Response {
    json_response(StatusCode::OK, &result_message(id, result))
}

async fn call(app: &App, profile: &Profile, decoration: Decoration, plan: CallPlan) -> Response {
    let delivery = plan.delivery;
    let mut reply = CallReply::new(plan, profile.lane, decoration);
    let stream = match delivery {
        Delivery::Json => false,
        Delivery::Stream => true,
        Delivery::Either => app.config.sse_tool_calls,
    };
    if !stream {
        return reply.json().await;
    }
    if let Some(e) = reply.early_failure(EARLY_FAILURE_WINDOW).await {
        return error_response(reply.id(), &e);
    }
    reply.sse(app.config.sse_keep_alive, app.release.clone())
}

/// A task as the caller's revision shows it.
fn task_view(flavour: TaskFlavour, task: TaskOutcome) -> Value {
    let legacy = flavour == TaskFlavour::Requested;
    match task {
        TaskOutcome::Created(r) if legacy => {
            json!({"task": view::legacy_task(&r, TaskStatus::Working)})
        }
        TaskOutcome::Created(r) => view::create_result(&r),
        TaskOutcome::Status(r, shown) if legacy => view::legacy_task(&r, shown),
        TaskOutcome::Status(r, _) => view::detailed(&r),
        TaskOutcome::Cancelled(r) if legacy => view::legacy_task(&r, TaskStatus::Cancelled),
        TaskOutcome::Cancelled(_) | TaskOutcome::Acknowledged => json!({}),
    }
}
