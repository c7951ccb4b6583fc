//! The one method table. Every client request, on either lane, is parsed once
//! (`request.rs`) and served here; the caller's profile supplies what differs between
//! revisions. A rule that applies to every method (authorization, limits, tracing) goes in
//! [`dispatch`], once.

use bus_schema::mcp::Method;
use bus_schema::messages::{ClientAnswer, WireError};
use bus_schema::{client_request_id, subjects, PROTOCOL_VERSION};
use serde_json::Value;

use super::answer_id::AnswerIds;
use super::caller::Caller;
use super::error::CoreError;
use super::mrtr::{self, Mrtr};
use super::outcome::{Cache, Outcome};
use super::request::{Command, Request};
use super::server_info::discover_result;
use super::{calls, lists, session, tasks};
use crate::app::App;
use crate::policy::Item;

/// Serves one request.
pub async fn dispatch(
    app: &App,
    caller: &Caller,
    mut request: Request,
) -> Result<Outcome, CoreError> {
    // A retry of a multi round-trip request: check what the client brings back.
    let mrtr = if caller.profile.mrtr && mrtr::supports(request.method) {
        let catalog = app.catalog.snapshot();
        Some(Mrtr::accept(
            &app.request_state,
            &catalog,
            caller,
            &mut request,
        )?)
    } else {
        None
    };
    // The command moves out; the request keeps its id and params for the call.
    let command = std::mem::replace(&mut request.command, Command::Ping);
    match command {
        Command::Initialize {
            protocol_version,
            client_info,
            capabilities,
        } => session::initialize(app, caller, &protocol_version, client_info, capabilities).await,
        Command::Ping => Ok(Outcome::done(serde_json::json!({}))),
        Command::SetLogLevel(level) => session::set_log_level(app, caller, level).await,
        Command::Subscribe { uri, on } => session::subscribe(app, caller, &uri, on).await,
        Command::Discover => Ok(Outcome::Done {
            result: discover_result(&caller.profile),
            cache: Cache::Public,
        }),
        Command::ListTools { cursor } => lists::tools(app, caller, cursor.as_deref()),
        Command::ListItems { kind, cursor } => lists::items(app, caller, kind, cursor.as_deref()),
        // Calls occupy workers: each holds the caller's quota slots until it ends.
        Command::CallTool { name, as_task } => {
            let slot = app.quotas.call(&caller.client, session_of(caller))?;
            calls::call_tool(app, caller, request, &name, as_task, mrtr)
                .await
                .map(|o| o.holding(slot))
        }
        Command::Read(target) => {
            let slot = app.quotas.call(&caller.client, session_of(caller))?;
            calls::read(app, caller, request, &target, mrtr)
                .await
                .map(|o| o.holding(slot))
        }
        Command::Listen(mut filter) => {
            let slot = app.quotas.listen(&caller.client)?;
            let view = app.policy.view(caller.principal.as_ref());
            if view.is_filtered() {
                let catalog = app.catalog.snapshot();
                filter.retain_resources(|uri| {
                    let pool = catalog.resource_route(uri).map(|r| r.pool.as_str());
                    view.allows(Item::Resource, uri, pool.unwrap_or(""))
                });
            }
            Ok(Outcome::Listen(filter, slot))
        }
        Command::Task { task_id, op } => tasks::handle(app, caller, &request, &task_id, &op).await,
    }
}

fn session_of(caller: &Caller) -> Option<&str> {
    caller.session_id().map(|s| s.as_str())
}

/// A client notification. Only `notifications/cancelled` does anything: the request may
/// run anywhere and its stream be held by any node, so the cancel subject is derived from
/// the session and the request id, and no lookup is needed. The pool running it is not
/// known either, so every pool serving now is told: a worker only hears its own pool's
/// cancellations (ADR 0013). (2026-07-28 cancels by closing the response stream; it has no
/// session to derive a subject from.)
pub async fn notify(app: &App, caller: &Caller, method: &str, params: &Value) {
    if Method::parse(method) != Some(Method::NotificationsCancelled) {
        return;
    }
    let (Some(session), Some(request_id)) = (caller.session_id(), params.get("requestId")) else {
        return;
    };
    for pool in app.catalog.snapshot().pools() {
        let subject = subjects::cancel_request(&pool, session.as_str(), request_id);
        app.events.cancel_call(subject, 0).await;
    }
}

/// The client's answer to a request a worker sent it (sampling, elicitation, roots), handed
/// to the worker waiting for it, wherever it runs. Answers to ids we did not issue to this
/// caller are dropped, as the transport allows (`answer_id`).
pub async fn answer(app: &App, caller: &Caller, message: &Value) {
    let ids = AnswerIds::for_caller(&app.request_state, caller);
    let base = message["id"].as_str().and_then(|id| ids.open(id));
    let Some((pool, call, seq)) = base.and_then(client_request_id::parse) else {
        tracing::debug!(id = %message["id"], "ignoring a response to an id we did not issue to this caller");
        return;
    };
    let error = message.get("error").map(|e| WireError {
        code: e["code"]
            .as_i64()
            .unwrap_or(bus_schema::mcp::code::INTERNAL_ERROR),
        message: e["message"].as_str().unwrap_or_default().to_owned(),
        data: e.get("data").cloned(),
    });
    let body = ClientAnswer {
        protocol: PROTOCOL_VERSION,
        result: message.get("result").cloned(),
        error,
    };
    app.dispatcher.forward_answer(&pool, call, seq, &body).await;
}
