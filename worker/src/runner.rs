//! Pulling calls from the pool's shared consumer and running them.
//!
//! Backpressure is structural: the runner only asks JetStream for as many calls as it has
//! free slots (`max_in_flight`), so surplus calls stay in the queue where another replica, or
//! a new one started by an autoscaler, can take them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer, AckKind};
use bus_schema::messages::{decode, CallEvent, CallRequest, WireError};
use bus_schema::names::InstanceId;
use bus_schema::topology::POOL_ACK_WAIT;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::CallContext;
use crate::tool::{ToolDef, ToolError};
use crate::WorkerError;

/// JSON-RPC codes a worker reports (see `bus-schema/PROTOCOL.md`).
const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;
const INTERNAL_ERROR: i64 = -32603;

/// How long one pull request waits for calls before it is renewed. Short enough that a
/// shutdown is noticed promptly, long enough not to churn requests on an idle queue.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

pub(crate) struct Runner {
    pub(crate) nats: async_nats::Client,
    pub(crate) instance: InstanceId,
    pub(crate) tools: HashMap<String, ToolDef>,
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
        };
        let outcome = self.decide(&req, &msg).await;
        let event = match outcome {
            Decision::Refuse(error) => {
                let _ = msg.ack_with(AckKind::Term).await;
                ctx.send(CallEvent::Error { error }).await;
                return;
            }
            Decision::Run(tool) => self.run(tool, &req, &ctx, &msg).await,
        };
        if let Some(event) = event {
            ctx.send(event).await;
        }
        if let Err(e) = msg.ack().await {
            tracing::warn!(call_id = %req.call_id, error = %e, "ack failed; the call may be redelivered");
        }
    }

    /// Checks everything that can refuse a call before it runs.
    async fn decide(&self, req: &CallRequest, msg: &jetstream::Message) -> Decision {
        if req.method != "tools/call" {
            return Decision::Refuse(wire(
                METHOD_NOT_FOUND,
                format!("worker does not serve method {:?}", req.method),
                None,
            ));
        }
        if req.deadline_ms <= now_ms() {
            return Decision::Refuse(wire(
                INTERNAL_ERROR,
                "the call's deadline passed before a worker picked it up".into(),
                Some(json!({"reason": "deadline_passed"})),
            ));
        }
        let name = req
            .params
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(tool) = self.tools.get(name) else {
            return Decision::Refuse(wire(INVALID_PARAMS, format!("Unknown tool: {name}"), None));
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
        Decision::Run(tool.clone())
    }

    /// Runs the handler, keeping the JetStream lease alive and stopping at the deadline.
    /// Returns the event to send, or `None` when nobody is listening any more.
    async fn run(
        &self,
        tool: ToolDef,
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
        let args = req.params.get("arguments").cloned().unwrap_or(Value::Null);
        // The handler runs in its own task so that a panic in tool code becomes a tool error
        // instead of taking the worker down.
        let task = tokio::spawn((tool.handler)(ctx.clone(), args));
        let abort = task.abort_handle();
        let until_deadline = Duration::from_millis(req.deadline_ms.saturating_sub(now_ms()));
        let outcome = tokio::select! {
            joined = task => Some(joined),
            _ = tokio::time::sleep(until_deadline) => None,
        };
        lease.abort();
        match outcome {
            None => {
                ctx.cancel.cancel();
                abort.abort();
                tracing::info!(call_id = %req.call_id, "deadline passed; call abandoned");
                None
            }
            Some(Ok(Ok(output))) => Some(CallEvent::Result {
                result: output.into_result(),
            }),
            Some(Ok(Err(tool_error))) => Some(CallEvent::Result {
                result: tool_error.into_result(),
            }),
            Some(Err(join)) => {
                tracing::error!(call_id = %req.call_id, error = %join, "tool handler panicked");
                Some(CallEvent::Result {
                    result: ToolError::new(format!(
                        "tool {:?} failed with an internal error",
                        tool.name()
                    ))
                    .into_result(),
                })
            }
        }
    }
}

enum Decision {
    Run(ToolDef),
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
