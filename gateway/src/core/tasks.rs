//! `tasks/get`, `tasks/result`, `tasks/update`, `tasks/cancel`: the core's side. The records
//! and their changes are `crate::tasks`; here the caller's revision picks what it may do and
//! how an outcome reads (the views are rendered at the edge).

use bus_schema::messages::WireError;
use serde_json::json;

use super::caller::Caller;
use super::error::CoreError;
use super::outcome::{CallFeed, CallPlan, Delivery, Outcome, TaskOutcome};
use super::profile::TaskFlavour;
use super::request::{Request, TaskOp};
use crate::app::App;
use crate::stream::StreamError;
use crate::tasks::{view, Cancelled, TaskError, TaskOwner, TaskStatus};

pub async fn handle(
    app: &App,
    caller: &Caller,
    request: &Request,
    task_id: &str,
    op: &TaskOp,
) -> Result<Outcome, CoreError> {
    let flavour = caller.profile.tasks;
    // A task belongs to the principal and session that made it; 2026-07-28 tasks belong to
    // no session, so neither lane sees the other's.
    let owner = TaskOwner {
        session: caller.session_id().map(|s| s.as_str()),
        principal: caller.principal.as_ref(),
    };
    match op {
        TaskOp::Get => {
            let record = app.tasks.get(task_id, owner).await?;
            let shown = match flavour {
                TaskFlavour::Requested => app.tasks.shown_status(&record).await,
                _ => record.status,
            };
            Ok(Outcome::task(TaskOutcome::Status(record, shown)))
        }
        TaskOp::Update(responses) => {
            app.tasks
                .answer(task_id, owner, responses, request.id.clone())
                .await?;
            Ok(Outcome::task(TaskOutcome::Acknowledged))
        }
        TaskOp::Cancel => match app.tasks.cancel(task_id, owner).await? {
            Cancelled::Now(record) => Ok(Outcome::task(TaskOutcome::Cancelled(record))),
            // 2025-11-25 refuses to cancel a finished task; 2026-07-28 acknowledges it.
            Cancelled::AlreadyEnded(record) if flavour == TaskFlavour::Requested => {
                Err(TaskError::Ended {
                    id: record.task_id,
                    status: record.status,
                }
                .into())
            }
            Cancelled::AlreadyEnded(_) => Ok(Outcome::task(TaskOutcome::Acknowledged)),
        },
        TaskOp::Result => result(app, caller, request, task_id, owner).await,
    }
}

/// 2025-11-25 `tasks/result`: what the call itself would have answered, once it ends. Until
/// then the response is a stream carrying the worker's questions.
async fn result(
    app: &App,
    caller: &Caller,
    request: &Request,
    task_id: &str,
    owner: TaskOwner<'_>,
) -> Result<Outcome, CoreError> {
    let record = app.tasks.get(task_id, owner).await?;
    match record.status {
        TaskStatus::Completed | TaskStatus::Failed => {
            if let Some(mut result) = record.result {
                view::relate_to_task(&mut result, &record.task_id);
                return Ok(Outcome::done(result));
            }
            let error = record.error.unwrap_or_else(|| json!({}));
            Err(CoreError::worker(WireError {
                code: error["code"]
                    .as_i64()
                    .unwrap_or(bus_schema::mcp::code::INTERNAL_ERROR),
                message: error["message"]
                    .as_str()
                    .unwrap_or("the task failed")
                    .to_owned(),
                data: error.get("data").cloned(),
            }))
        }
        TaskStatus::Cancelled => Err(TaskError::NoResult(record.task_id).into()),
        TaskStatus::Working | TaskStatus::InputRequired => {
            // Retention is longer than any task's ttl, so expired events mean a broken store,
            // not a client that waited too long: not the 410 a Last-Event-ID resume gets.
            let stream = app.tasks.follow(&record).await.map_err(|e| match e {
                StreamError::Expired => {
                    CoreError::Internal(format!("the events of task {task_id} are gone"))
                }
                e => e.into(),
            })?;
            let feed = CallFeed::Stored(Box::new(stream));
            let plan = CallPlan::new(
                &app.request_state,
                caller,
                request.id.clone(),
                feed,
                Delivery::Stream,
            )
            .related_to(record.task_id);
            Ok(Outcome::Call(Box::new(plan)))
        }
    }
}
