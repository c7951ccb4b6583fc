//! Pulling calls from the pool's shared consumer and running them.
//!
//! Backpressure is structural: the runner only asks JetStream for as many calls as it has
//! free slots (`max_in_flight`), so surplus calls stay in the queue where another replica, or
//! a new one started by an autoscaler, can take them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer, AckKind};
use bus_schema::messages::{decode, CallEvent, CallRequest, Lane, WireError};
use bus_schema::names::InstanceId;
use bus_schema::topology::POOL_ACK_WAIT;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalogue::Catalogue;
use crate::context::CallContext;
use crate::mrtr::Rounds;
use crate::resource::{PromptDef, ResourceDef};
use crate::tool::{ToolDef, ToolError};
use crate::WorkerError;

/// JSON-RPC codes a worker reports (see `bus-schema/PROTOCOL.md`).
const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;
const INTERNAL_ERROR: i64 = -32603;
/// Resource not found in the 2025 revisions (2026-07-28 uses -32602).
const RESOURCE_NOT_FOUND: i64 = -32002;

/// How long one pull request waits for calls before it is renewed. Short enough that a
/// shutdown is noticed promptly, long enough not to churn requests on an idle queue.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

pub(crate) struct Runner {
    pub(crate) nats: async_nats::Client,
    pub(crate) instance: InstanceId,
    /// What is served; each call decides against the snapshot current when it arrives.
    pub(crate) catalogue: Catalogue,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) tracker: TaskTracker,
    /// Parent of every call's cancellation token; fired when the drain deadline passes.
    pub(crate) cancel_all: CancellationToken,
}

impl Runner {
    /// Pulls and dispatches calls until `stop` fires. Calls already running keep running;
    /// the caller waits for them through the tracker.
    pub(crate) async fn pull_until(
        self: Arc<Self>,
        consumer: consumer::Consumer<consumer::pull::Config>,
        stop: CancellationToken,
    ) -> Result<(), WorkerError> {
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                p = self.slots.clone().acquire_owned() => p.expect("semaphore never closes"),
            };
            let want = 1 + self.slots.available_permits();
            let batch = consumer
                .batch()
                .max_messages(want)
                .expires(PULL_EXPIRES)
                .messages()
                .await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "pull request failed; retrying");
                    drop(first);
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            let mut first = Some(first);
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    m = batch.next() => m,
                };
                let msg = match next {
                    None => break,
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "pull batch ended");
                        break;
                    }
                };
                let slot = match first.take() {
                    Some(p) => p,
                    None => self
                        .slots
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("semaphore never closes"),
                };
                let me = self.clone();
                self.tracker
                    .spawn(async move { me.handle(msg, slot).await });
            }
        }
    }

    async fn handle(self: Arc<Self>, msg: jetstream::Message, _slot: OwnedSemaphorePermit) {
        let msg = Arc::new(msg);
        let req: CallRequest = match decode(&msg.payload) {
            Ok(r) => r,
            Err(e) => {
                // Without a readable body there is nobody to answer; drop it for good so it
                // does not poison the queue.
                tracing::warn!(error = %e, "discarding unreadable call");
                let _ = msg.ack_with(AckKind::Term).await;
                return;
            }
        };
        let ctx = CallContext {
            nats: Some(self.nats.clone()),
            reply_to: req.reply_to.clone(),
            call_id: req.call_id.clone(),
            instance: self.instance.clone(),
            wants_progress: req.params.pointer("/_meta/progressToken").is_some(),
            cancel: self.cancel_all.child_token(),
            durable: req.reply_durable.then(|| jetstream::new(self.nats.clone())),
            sent: Default::default(),
            delivery: msg.info().map(|i| i.delivered as u64).unwrap_or(1),
            asked: Default::default(),
            client_capabilities: req.client_capabilities.clone(),
            lane: req.lane,
            deadline_ms: req.deadline_ms,
            mrtr: Arc::new(Rounds::from_params(&req.params)),
            catalogue: self.catalogue.clone(),
            task_id: req.task_id.clone(),
            escalated: Default::default(),
        };
        let outcome = self.decide(&req, &msg).await;
        let event = match outcome {
            Decision::Refuse(error) => {
                let _ = msg.ack_with(AckKind::Term).await;
                ctx.send(CallEvent::Error { error }).await;
                return;
            }
            Decision::Run(job) => self.run(job, &req, &ctx, &msg).await,
        };
        if let Some(event) = event {
            ctx.send(event).await;
        }
        if let Err(e) = msg.ack().await {
            tracing::warn!(call_id = %req.call_id, error = %e, "ack failed; the call may be redelivered");
        }
    }

    /// Checks everything that can refuse a call before it runs, and finds its handler.
    async fn decide(&self, req: &CallRequest, msg: &jetstream::Message) -> Decision {
        let served = self.catalogue.snapshot();
        if req.deadline_ms <= now_ms() {
            return Decision::Refuse(wire(
                INTERNAL_ERROR,
                "the call's deadline passed before a worker picked it up".into(),
                Some(json!({"reason": "deadline_passed"})),
            ));
        }
        let param = |key: &str| {
            req.params
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        match req.method.as_str() {
            "tools/call" => {
                let name = param("name");
                let Some(tool) = served.tools.get(name) else {
                    return Decision::Refuse(wire(
                        INVALID_PARAMS,
                        format!("Unknown tool: {name}"),
                        None,
                    ));
                };
                let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
                if delivered > 1 && !tool.idempotent() {
                    return Decision::Refuse(wire(
                        INTERNAL_ERROR,
                        format!(
                            "the worker running tool {name:?} stopped before answering; the tool is not \
                             idempotent (annotations.idempotentHint), so it was not run again"
                        ),
                        Some(json!({"reason": "worker_lost", "tool": name})),
                    ));
                }
                Decision::Run(Job::Tool(tool.clone()))
            }
            "resources/read" => {
                let uri = param("uri");
                match served.resources.values().find(|r| r.serves(uri)) {
                    Some(r) => Decision::Run(Job::Read(r.clone(), uri.to_owned())),
                    None => Decision::Refuse(resource_not_found(req, uri)),
                }
            }
            "prompts/get" => {
                let name = param("name");
                let Some(prompt) = served.prompts.get(name) else {
                    return Decision::Refuse(wire(
                        INVALID_PARAMS,
                        format!("Unknown prompt: {name}"),
                        None,
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
            "completion/complete" => {
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
                        None,
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
            other => Decision::Refuse(wire(
                METHOD_NOT_FOUND,
                format!("worker does not serve method {other:?}"),
                None,
            )),
        }
    }

    /// Runs the job, keeping the JetStream lease alive and stopping at the deadline.
    /// Returns the event to send, or `None` when nobody is listening any more.
    async fn run(
        &self,
        job: Job,
        req: &CallRequest,
        ctx: &CallContext,
        msg: &Arc<jetstream::Message>,
    ) -> Option<CallEvent> {
        ctx.send(CallEvent::Accepted).await;
        let lease_msg = msg.clone();
        let lease = tokio::spawn(async move {
            loop {
                tokio::time::sleep(POOL_ACK_WAIT / 3).await;
                let _ = lease_msg.ack_with(AckKind::Progress).await;
            }
        });
        let is_tool = matches!(job, Job::Tool(_));
        // Subscribed before the job starts, so a cancellation is never missed.
        let cancel = self.nats.subscribe(req.cancel_subject()).await;
        let cancelled = async {
            match cancel {
                Ok(mut sub) => {
                    sub.next().await;
                }
                Err(e) => {
                    tracing::warn!(call_id = %req.call_id, error = %e, "cannot listen for cancellation");
                    std::future::pending::<()>().await;
                }
            }
        };
        let work = job.start(ctx.clone(), req);
        // The job runs in its own task so that a panic in handler code becomes an error
        // instead of taking the worker down.
        let task = tokio::spawn(work);
        let abort = task.abort_handle();
        let until_deadline = Duration::from_millis(req.deadline_ms.saturating_sub(now_ms()));
        let outcome = tokio::select! {
            joined = task => Some(joined),
            _ = tokio::time::sleep(until_deadline) => None,
            _ = cancelled => {
                lease.abort();
                ctx.cancel.cancel();
                abort.abort();
                // Nobody waits for an answer to a cancelled call.
                tracing::info!(call_id = %req.call_id, "call cancelled");
                return None;
            }
        };
        lease.abort();
        match outcome {
            None => {
                ctx.cancel.cancel();
                abort.abort();
                tracing::info!(call_id = %req.call_id, "deadline passed; call abandoned");
                None
            }
            Some(Ok(Ok(result))) => Some(CallEvent::Result { result }),
            Some(Ok(Err(error))) => Some(CallEvent::Error { error }),
            Some(Err(join)) => {
                tracing::error!(call_id = %req.call_id, error = %join, "handler panicked");
                let message = "the worker failed with an internal error".to_owned();
                Some(if is_tool {
                    CallEvent::Result {
                        result: ToolError::new(message).into_result(),
                    }
                } else {
                    CallEvent::Error {
                        error: wire(INTERNAL_ERROR, message, None),
                    }
                })
            }
        }
    }
}

/// What a call runs.
enum Job {
    Tool(ToolDef),
    Read(ResourceDef, String),
    Prompt(PromptDef, Map<String, Value>),
    Complete(Vec<String>),
}

/// Most completion values returned at once, as the MCP spec caps them.
const MAX_COMPLETIONS: usize = 100;

impl Job {
    /// The job's future, producing the MCP result or a protocol error.
    fn start(
        self,
        ctx: CallContext,
        req: &CallRequest,
    ) -> BoxFuture<'static, Result<Value, WireError>> {
        match self {
            Job::Tool(tool) => {
                let args = req.params.get("arguments").cloned().unwrap_or(Value::Null);
                async move {
                    if tool.escalate_at_start {
                        ctx.run_as_task().await;
                    }
                    (tool.handler)(ctx, args).await
                }
                .map(|r| match r {
                    Ok(output) => Ok(output.into_result()),
                    Err(e) => match e.input_required {
                        Some(ask) => Ok(ask),
                        None => match e.protocol {
                            Some(wire) => Err(wire),
                            None => Ok(e.into_result()),
                        },
                    },
                })
                .boxed()
            }
            Job::Read(resource, uri) => (resource.read)(ctx, uri)
                .map(|r| {
                    r.map(|contents| json!({"contents": contents}))
                        .or_else(|e| protocol_failure(e, INTERNAL_ERROR))
                })
                .boxed(),
            Job::Prompt(prompt, args) => (prompt.get)(ctx, args)
                .map(|r| r.or_else(|e| protocol_failure(e, INVALID_PARAMS)))
                .boxed(),
            Job::Complete(values) => {
                let total = values.len();
                let values: Vec<String> = values.into_iter().take(MAX_COMPLETIONS).collect();
                let result = json!({"completion": {"values": values, "total": total, "hasMore": total > MAX_COMPLETIONS}});
                futures::future::ready(Ok(result)).boxed()
            }
        }
    }
}

/// How a failed read or prompt reaches the client: its `InputRequiredResult` when it stopped
/// to ask, its own protocol error, or `code` with its message.
fn protocol_failure(e: ToolError, code: i64) -> Result<Value, WireError> {
    match (e.input_required, e.protocol) {
        (Some(ask), _) => Ok(ask),
        (None, Some(wire)) => Err(wire),
        (None, None) => Err(wire(code, e.message, None)),
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
        Some(json!({"uri": uri})),
    )
}

enum Decision {
    Run(Job),
    Refuse(WireError),
}

fn wire(code: i64, message: String, data: Option<Value>) -> WireError {
    WireError {
        code,
        message,
        data,
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
