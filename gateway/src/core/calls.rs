//! Requests that a worker pool answers: `tools/call` (plain, or as a task the revision's
//! way) and the routed reads `resources/read`, `prompts/get`, `completion/complete`.

use std::sync::Arc;

use bus_schema::mcp::Method;
use serde_json::{Map, Value};

use super::caller::Caller;
use super::error::CoreError;
use super::mrtr::Mrtr;
use super::outcome::{Cache, CallFeed, CallPlan, Delivery, Outcome, TaskOutcome};
use super::profile::TaskFlavour;
use super::request::{ReadTarget, Request};
use crate::app::App;
use crate::catalog::{ListKind, Lookup, ToolRoute};
use crate::metrics;
use crate::policy::Item;
use crate::route::{CallUpdate, RouteError};
use crate::stream::{RequestStream, StreamOrigin};
use crate::tasks::{NewTask, Tasks};

/// `execution.taskSupport` of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskSupport {
    Forbidden,
    Optional,
    Required,
}

impl TaskSupport {
    /// `forbidden` when the tool says nothing (or something we do not know).
    fn of(route: &ToolRoute) -> Self {
        let declared = route
            .tool
            .get("execution")
            .and_then(|e| e.get("taskSupport"))
            .and_then(Value::as_str);
        match declared {
            Some("optional") => Self::Optional,
            Some("required") => Self::Required,
            _ => Self::Forbidden,
        }
    }
}

/// `tools/call`: a task if the revision and the tool make it one, else a call whose updates
/// the edge streams.
pub async fn call_tool(
    app: &App,
    caller: &Caller,
    request: Request,
    name: &str,
    as_task: Option<Option<u64>>,
    mrtr: Option<Mrtr>,
) -> Result<Outcome, CoreError> {
    let route = resolve_tool(app, caller, name)?;
    let support = TaskSupport::of(&route);
    match caller.profile.tasks {
        TaskFlavour::None => {}
        TaskFlavour::Requested => match (as_task, support) {
            (Some(_), TaskSupport::Forbidden) | (None, TaskSupport::Required) => {
                return Err(CoreError::TaskMode {
                    tool: name.to_owned(),
                    as_task: as_task.is_some(),
                })
            }
            (Some(ttl), _) => return task_at_once(app, caller, &request, &route, ttl).await,
            (None, _) => {}
        },
        TaskFlavour::Extension => {
            let takes = caller.takes_task_extension();
            if support == TaskSupport::Required && !takes {
                return Err(CoreError::missing_task_extension(&format!("tool {name:?}")));
            }
            if support != TaskSupport::Forbidden && takes {
                return task_on_escalation(app, caller, request, &route, mrtr).await;
            }
        }
    }
    let progress_token = request.progress_token();
    let spec = request.spec(caller);
    let timeout = app.config.default_tool_timeout;
    // A session's calls are stored under it, so their streams resume on any node; the
    // stateless revision has no resumption, so its replies come straight back on core NATS.
    let feed = match caller.session_id() {
        Some(session) => CallFeed::Stored(Box::new(
            RequestStream::start(
                &app.events,
                &app.dispatcher,
                &route,
                spec,
                timeout,
                StreamOrigin {
                    session: session.as_str(),
                    request_id: request.id.clone(),
                    progress_token: progress_token.clone(),
                    call_id: None,
                },
            )
            .await?,
        )),
        None => CallFeed::Core(Box::new(app.dispatcher.call(&route, spec, timeout).await?)),
    };
    let plan = CallPlan::new(
        &app.request_state,
        caller,
        request.id,
        feed,
        Delivery::Either,
    )
    .with_updates(progress_token, caller.min_log)
    .with_mrtr(mrtr);
    Ok(Outcome::Call(Box::new(plan)))
}

/// The live route of tool `name`. A tool the caller may not use is answered exactly like a
/// tool that does not exist, so a policy does not leak what it hides.
fn resolve_tool(app: &App, caller: &Caller, name: &str) -> Result<ToolRoute, RouteError> {
    let _policy =
        mcpbus_telemetry::exported_only(|| tracing::info_span!("mcpbus.policy")).entered();
    let view = app.policy.view(caller.principal.as_ref());
    let unknown = || RouteError::UnknownTool(name.to_owned());
    match app.catalog.snapshot().lookup(name) {
        Lookup::Live(route) if view.allows(Item::Tool, name, route.pool.as_str()) => {
            Ok(route.clone())
        }
        Lookup::Departed(pool) if view.allows(Item::Tool, name, pool.as_str()) => {
            metrics::CallMeter::refused(pool, name, metrics::Outcome::NoWorker);
            Err(RouteError::NoWorker {
                tool: name.to_owned(),
                pool: pool.clone(),
            })
        }
        Lookup::Live(_) | Lookup::Departed(_) => {
            metrics::policy_denied(Method::ToolsCall);
            Err(unknown())
        }
        _ => Err(unknown()),
    }
}

/// Queues the first round of a new task for `request`: its id and the round's stream.
async fn first_round(
    app: &App,
    caller: &Caller,
    request: &Request,
    route: &ToolRoute,
) -> Result<(String, RequestStream), CoreError> {
    let task_id = Tasks::new_id();
    let spec = request.spec(caller);
    let round = app
        .tasks
        .start_round(route, spec, &task_id, request.id.clone(), None)
        .await?;
    Ok((task_id, round))
}

/// 2025-11-25: the client asked for a task, so it gets one at once, bound to its session.
async fn task_at_once(
    app: &App,
    caller: &Caller,
    request: &Request,
    route: &ToolRoute,
    ttl: Option<u64>,
) -> Result<Outcome, CoreError> {
    // A task outlives its request and holds no call slot: its rate is bounded instead.
    app.quotas.new_task(&caller.client)?;
    let (task_id, round) = first_round(app, caller, request, route).await?;
    let max_ttl = app.config.task_ttl.as_millis() as u64;
    let task = NewTask {
        task_id,
        ttl_ms: ttl.map_or(max_ttl, |t| t.clamp(1_000, max_ttl)),
        route,
        params: request.params.clone(),
        client_capabilities: caller.client_capabilities.clone(),
        session: caller.session_id().map(|s| s.as_str().to_owned()),
        principal: caller.principal.clone(),
    };
    let record = app.tasks.create(task, &round).await?;
    Ok(Outcome::task(TaskOutcome::Created(record)))
}

/// 2026-07-28: an ordinary call (an MRTR round, or a result fast enough not to need a task)
/// until the worker escalates it; then the task is stored, durable before the client hears
/// of it, so any node can answer `tasks/get`.
async fn task_on_escalation(
    app: &App,
    caller: &Caller,
    request: Request,
    route: &ToolRoute,
    mrtr: Option<Mrtr>,
) -> Result<Outcome, CoreError> {
    // Any such call may become a task the moment the worker says so, too late to refuse it
    // cleanly: it counts as a task when it starts.
    app.quotas.new_task(&caller.client)?;
    // Later rounds start from the call as first made, without this round's answers.
    let mut params = request.params.clone();
    if let Some(p) = params.as_object_mut() {
        p.remove("inputResponses");
        p.remove("requestState");
    }
    let (task_id, mut round) = first_round(app, caller, &request, route).await?;
    while let Some((_, update)) = round.next().await {
        match update {
            CallUpdate::Done(outcome) => {
                let feed = CallFeed::Settled(Some(CallUpdate::Done(outcome)));
                let plan =
                    CallPlan::new(&app.request_state, caller, request.id, feed, Delivery::Json)
                        .with_mrtr(mrtr);
                return Ok(Outcome::Call(Box::new(plan)));
            }
            CallUpdate::Escalate => {
                let task = NewTask {
                    task_id,
                    ttl_ms: app.config.task_ttl.as_millis() as u64,
                    route,
                    params,
                    client_capabilities: caller.client_capabilities.clone(),
                    session: None,
                    principal: caller.principal.clone(),
                };
                let record = app.tasks.create(task, &round).await?;
                return Ok(Outcome::task(TaskOutcome::Created(record)));
            }
            _ => {}
        }
    }
    Err(CoreError::Internal(
        "the call ended without an answer".into(),
    ))
}

/// `resources/read`, `prompts/get`, `completion/complete`: found in the catalogue, then
/// queued for the owning pool like a tool call (replies on core NATS: these are short).
pub async fn read(
    app: &App,
    caller: &Caller,
    request: Request,
    target: &ReadTarget,
    mrtr: Option<Mrtr>,
) -> Result<Outcome, CoreError> {
    // What a worker returns may depend on the caller, so a read is private.
    let cache = match target {
        ReadTarget::Resource { .. } => Cache::Private,
        _ => Cache::None,
    };
    // What the caller may not use is answered like what does not exist.
    let view = app.policy.view(caller.principal.as_ref());
    let snapshot = app.catalog.snapshot();
    let (pool, key) = match target {
        ReadTarget::Resource { uri } => match snapshot.resource_route(uri) {
            Some(r) if view.allows(Item::Resource, uri, r.pool.as_str()) => {
                (r.pool.clone(), uri.clone())
            }
            found => {
                if found.is_some() {
                    metrics::policy_denied(Method::ResourcesRead);
                }
                return Err(CoreError::ResourceNotFound { uri: uri.clone() });
            }
        },
        ReadTarget::Prompt { name } => match snapshot.item(ListKind::Prompts, name) {
            Some(p) if view.allows(Item::Prompt, name, p.pool.as_str()) => {
                (p.pool.clone(), name.clone())
            }
            found => {
                if found.is_some() {
                    metrics::policy_denied(Method::PromptsGet);
                }
                return Err(CoreError::invalid_params(format!("Unknown prompt: {name}")));
            }
        },
        ReadTarget::Completion { reference } => {
            let found = match (
                reference["type"].as_str(),
                reference["name"].as_str(),
                reference["uri"].as_str(),
            ) {
                (Some("ref/prompt"), Some(name), _) => snapshot
                    .item(ListKind::Prompts, name)
                    .filter(|i| view.allows(Item::Prompt, name, i.pool.as_str())),
                (Some("ref/resource"), _, Some(uri)) => snapshot
                    .item(ListKind::Templates, uri)
                    .or_else(|| snapshot.item(ListKind::Resources, uri))
                    .filter(|i| view.allows(Item::Resource, uri, i.pool.as_str())),
                _ => None,
            };
            match found {
                Some(i) => (i.pool.clone(), reference.to_string()),
                None => {
                    return Err(CoreError::invalid_params(format!(
                        "Invalid params: unknown completion reference {reference}"
                    )))
                }
            }
        }
    };
    let mut entry = Map::new();
    entry.insert("name".into(), Value::String(key));
    let route = ToolRoute {
        pool,
        tool: Arc::new(entry),
        timeout: None,
    };
    let call = app
        .dispatcher
        .call(
            &route,
            request.spec(caller),
            app.config.default_tool_timeout,
        )
        .await?;
    let feed = CallFeed::Core(Box::new(call));
    let plan = CallPlan::new(&app.request_state, caller, request.id, feed, Delivery::Json)
        .with_mrtr(mrtr)
        .with_cache(cache);
    Ok(Outcome::Call(Box::new(plan)))
}
