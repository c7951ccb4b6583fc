//! Pulling calls from the pool's shared consumer and running them.
//!
//! Backpressure is structural: the runner only asks JetStream for as many calls as it has
//! free slots (`max_in_flight`), so surplus calls stay in the queue where another replica, or
//! a new one started by an autoscaler, can take them.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use bus_schema::mcp::code::INTERNAL_ERROR;
use bus_schema::mcp::Method;
use bus_schema::messages::{decode, CallEvent, CallRequest, MessageError};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::refusal::{reason, unreadable_call};
use bus_schema::topology::POOL_ACK_WAIT;
use futures::StreamExt;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use mcpbus_telemetry::{KeyValue, TraceContext};
use tracing::{Instrument, Span};

use crate::call_error::ToolError;
use crate::cancels::Cancels;
use crate::catalogue::Catalogue;
use crate::clock;
use crate::context::CallContext;
use crate::decide::{decide, wire, Decision};
use crate::error::WorkerError;
use crate::job::Job;
use crate::metrics;

/// How long one pull request waits for calls before it is renewed. Short enough that a
/// shutdown is noticed promptly, long enough not to churn requests on an idle queue.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// How long a call runs before its `accepted` is sent anyway: a call that answers sooner
/// needs none (its result says it ran), which saves a message per call through nats-server
/// (ADR 0026). Short beside any tool timeout, so a timeout message still tells "queued" from
/// "running", and the gateway's queue-time metric is off by at most this much.
const ACCEPTED_GRACE: Duration = Duration::from_millis(5);

pub(crate) struct Runner {
    pub(crate) nats: async_nats::Client,
    pub(crate) pool: PoolName,
    pub(crate) instance: InstanceId,
    /// What is served; each call decides against the snapshot current when it arrives.
    pub(crate) catalogue: Catalogue,
    pub(crate) slots: Arc<Semaphore>,
    /// The number of slots (`max_in_flight`, at least 1).
    pub(crate) max_in_flight: usize,
    /// The pool's cancellations, heard on one subscription (ADR 0026).
    pub(crate) cancels: Arc<Cancels>,
    pub(crate) tracker: TaskTracker,
    /// Parent of every call's cancellation token; fired when the drain deadline passes.
    pub(crate) cancel_all: CancellationToken,
}

impl Runner {
    /// Pulls and dispatches calls until `stop` fires. Calls already running keep running;
    /// the caller waits for them through the tracker.
    ///
    /// Each pull request asks for as many calls as there are free slots, and holds those
    /// slots until its calls arrive or it expires, so the worker never holds more calls than
    /// it can run. A new request is opened once half the slots are free again, while the
    /// previous one may still be open: a worker that is not full always has a request
    /// waiting at the server, and no call waits for a pull round trip (issue 18's tail).
    pub(crate) async fn pull_until(
        self: Arc<Self>,
        consumer: consumer::Consumer<consumer::pull::Config>,
        stop: CancellationToken,
    ) -> Result<(), WorkerError> {
        let pulls = TaskTracker::new();
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let closed = Arc::new(Notify::new());
        let refill = (self.max_in_flight / 2).max(1) as u32;
        loop {
            // With no request open, any free slot is worth one; with one open, wait for half.
            let need = if open.load(std::sync::atomic::Ordering::Acquire) == 0 {
                1
            } else {
                refill
            };
            let mut reserved = tokio::select! {
                _ = stop.cancelled() => break,
                _ = closed.notified() => continue,
                p = self.slots.clone().acquire_many_owned(need) => p.expect("semaphore never closes"),
            };
            let more = self.slots.available_permits() as u32;
            if more > 0 {
                if let Ok(p) = self.slots.clone().try_acquire_many_owned(more) {
                    reserved.merge(p);
                }
            }
            let batch = consumer
                .batch()
                .max_messages(reserved.num_permits())
                .expires(PULL_EXPIRES)
                .messages()
                .await;
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "pull request failed; retrying");
                    drop(reserved);
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            open.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            let me = self.clone();
            let (open, closed) = (open.clone(), closed.clone());
            pulls.spawn(async move {
                me.deliver(batch, reserved).await;
                open.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                closed.notify_one();
            });
        }
        // Once `stop` fires no new pull is sent, but those open may still deliver: those
        // calls are ours and run as usual. A NAK would raise their delivery count and turn
        // a non-idempotent call into `worker_lost` (PROTOCOL §4.3). They end by `expires`.
        pulls.close();
        pulls.wait().await;
        Ok(())
    }

    /// Runs the calls one pull request delivers, each on one of the slots reserved for it;
    /// the slots it did not use are freed when it ends.
    async fn deliver(
        self: &Arc<Self>,
        mut batch: consumer::pull::Batch,
        mut reserved: OwnedSemaphorePermit,
    ) {
        loop {
            let msg = match batch.next().await {
                None => break,
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "pull batch ended");
                    break;
                }
            };
            let slot = match reserved.split(1) {
                Some(p) => p,
                // More than asked for (never from a conforming server): wait for a slot.
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

    /// One call in its span (ADR 0020): a child of the gateway's publish span, whose context
    /// the call's headers carry; the time the call waited in the queue is recorded beside it.
    async fn handle(self: Arc<Self>, msg: jetstream::Message, slot: OwnedSemaphorePermit) {
        let req: CallRequest = match decode(&msg.payload) {
            Ok(r) => r,
            Err(e) => return self.refuse_unreadable(&msg, e).await,
        };
        let parent = TraceContext::from_nats(msg.headers.as_ref());
        let subject = msg.subject.to_string();
        if let (Some(parent), Ok(info)) = (&parent, msg.info()) {
            mcpbus_telemetry::record_past(
                "mcpbus.queue",
                mcpbus_telemetry::SpanKind::Consumer,
                parent,
                info.published.into(),
                vec![
                    KeyValue::new("messaging.system", "nats"),
                    KeyValue::new("messaging.operation.type", "receive"),
                    KeyValue::new("messaging.destination.name", subject.clone()),
                    KeyValue::new("messaging.consumer.group.name", self.pool.to_string()),
                    KeyValue::new("messaging.message.id", req.call_id.clone()),
                ],
            );
        }
        let span = call_span(&req, &self.pool, &self.instance, &subject);
        let trace = mcpbus_telemetry::continue_trace(&span, parent);
        // Boxed: the span's wrapper then moves a pointer, not the call's state machine.
        Box::pin(self.handle_call(msg, req, trace, slot))
            .instrument(span)
            .await
    }

    async fn handle_call(
        self: Arc<Self>,
        msg: jetstream::Message,
        req: CallRequest,
        trace: TraceContext,
        _slot: OwnedSemaphorePermit,
    ) {
        let msg = Arc::new(msg);
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        let mut ctx = CallContext::for_call(
            &req,
            Some(self.nats.clone()),
            self.pool.clone(),
            self.instance.clone(),
            self.cancel_all.child_token(),
            delivered as u64,
            self.catalogue.clone(),
        );
        ctx.trace = Some(trace);
        let served = self.catalogue.snapshot();
        // Tool calls are measured under the tool's name if this worker serves it.
        let metered = (req.method == Method::ToolsCall.as_str()).then(|| {
            req.params["name"]
                .as_str()
                .filter(|n| served.tools.contains_key(*n))
                .unwrap_or("_other")
                .to_owned()
        });
        let outcome = match decide(&served, &req, delivered) {
            // Answered before the TERM: a crash in between redelivers the call, which is
            // refused again, rather than leaving the client waiting for its timeout.
            Decision::Refuse(error) => {
                if let Some(tool) = &metered {
                    metrics::refused(&self.pool, tool);
                }
                ctx.send(CallEvent::Error { error }).await;
                let _ = msg.ack_with(AckKind::Term).await;
                return;
            }
            Decision::Run(job) => {
                let running = metered
                    .as_deref()
                    .map(|t| metrics::Running::start(&self.pool, t));
                let outcome = self.run(job, &req, &ctx, &msg).await;
                if let Some(running) = running {
                    running.finish(outcome.label());
                }
                outcome
            }
        };
        let ack = match outcome {
            Outcome::Reply(event) => {
                if ctx.send(event).await {
                    AckKind::Ack
                } else {
                    // The outcome is not stored, so it must not be acknowledged either: a
                    // redelivery reruns an idempotent tool and answers the others `worker_lost`.
                    AckKind::Nak(None)
                }
            }
            Outcome::Quiet(_) => AckKind::Ack,
            Outcome::Abandoned => AckKind::Nak(None),
        };
        if let Err(e) = msg.ack_with(ack).await {
            tracing::warn!(call_id = %req.call_id, error = %e, "ack failed; the call may be redelivered");
        }
    }

    /// A call whose body does not decode: answered when its envelope can be read (an unknown
    /// protocol version, a malformed field), then terminated so it does not poison the queue.
    async fn refuse_unreadable(&self, msg: &jetstream::Message, e: MessageError) {
        tracing::warn!(error = %e, "refusing an unreadable call");
        if let Some((envelope, error)) = unreadable_call(&msg.payload) {
            let delivered = msg.info().map(|i| i.delivered as u64).unwrap_or(1);
            CallContext::for_envelope(
                &envelope,
                self.nats.clone(),
                self.pool.clone(),
                self.instance.clone(),
                delivered,
            )
            .send(CallEvent::Error { error })
            .await;
        }
        let _ = msg.ack_with(AckKind::Term).await;
    }

    /// Runs the job, keeping the JetStream lease alive and stopping at the deadline, at a
    /// cancellation, or when the drain deadline passes.
    async fn run(
        &self,
        job: Job,
        req: &CallRequest,
        ctx: &CallContext,
        msg: &Arc<jetstream::Message>,
    ) -> Outcome {
        // `accepted` is owed from here (the context sends it before any other reply, or the
        // grace below does); only the final reply decides the ack, and a lost `accepted`
        // costs only timeout precision.
        tracing::debug!(method = %req.method, "call accepted");
        let lease_msg = msg.clone();
        let lease = tokio::spawn(async move {
            loop {
                tokio::time::sleep(POOL_ACK_WAIT / 3).await;
                let _ = lease_msg.ack_with(AckKind::Progress).await;
            }
        });
        let is_tool = matches!(job, Job::Tool(_));
        // Watched before the job starts, so a cancellation is never missed: on the pool-wide
        // subscription, or, for a subject it does not receive, on one of the call's own.
        let cancel_subject = req.cancel_subject(&self.pool);
        let watch = self.cancels.watch(&self.pool, &cancel_subject);
        let own = match watch {
            Some(_) => None,
            None => Some(self.nats.subscribe(cancel_subject).await),
        };
        let cancelled = async {
            match (&watch, own) {
                (Some(watch), _) => watch.cancelled().await,
                (None, Some(Ok(mut sub))) => {
                    sub.next().await;
                }
                (None, Some(Err(e))) => {
                    tracing::warn!(call_id = %req.call_id, error = %e, "cannot listen for cancellation");
                    std::future::pending::<()>().await;
                }
                (None, None) => unreachable!("a call without a watch subscribes"),
            }
        };
        tokio::pin!(cancelled);
        let work = job.start(ctx.clone(), req);
        // The job runs in its own task so that a panic in handler code becomes an error
        // instead of taking the worker down.
        let task = tokio::spawn(work.instrument(tracing::Span::current()));
        let abort = task.abort_handle();
        let until_deadline = clock::until(req.deadline_ms);
        let deadline = tokio::time::sleep(until_deadline);
        tokio::pin!(deadline);
        // Before the deadline, so a call that times out was reported running.
        let grace = tokio::time::sleep(ACCEPTED_GRACE.min(until_deadline / 2));
        tokio::pin!(grace);
        let mut graced = false;
        tokio::pin!(task);
        let outcome = loop {
            tokio::select! {
                joined = &mut task => break Some(joined),
                _ = &mut grace, if !graced => {
                    graced = true;
                    ctx.accept().await;
                }
                _ = &mut deadline => break None,
                _ = &mut cancelled => {
                    lease.abort();
                    ctx.cancel.cancel();
                    abort.abort();
                    // Nobody waits for an answer to a cancelled call.
                    tracing::info!(call_id = %req.call_id, "call cancelled");
                    return Outcome::Quiet("cancelled");
                }
                _ = self.cancel_all.cancelled() => {
                    lease.abort();
                    ctx.cancel.cancel();
                    abort.abort();
                    tracing::warn!(call_id = %req.call_id, "drain deadline passed; call handed back to the queue");
                    return Outcome::Abandoned;
                }
            }
        };
        lease.abort();
        match outcome {
            None => {
                ctx.cancel.cancel();
                abort.abort();
                tracing::info!(call_id = %req.call_id, "deadline passed; call abandoned");
                Outcome::Quiet("timeout")
            }
            Some(Ok(Ok(result))) => Outcome::Reply(CallEvent::Result { result }),
            Some(Ok(Err(error))) => Outcome::Reply(CallEvent::Error { error }),
            Some(Err(join)) => {
                tracing::error!(call_id = %req.call_id, error = %join, "handler panicked");
                let message = "the worker failed with an internal error".to_owned();
                Outcome::Reply(if is_tool {
                    CallEvent::Result {
                        result: ToolError::new(message).into_result(),
                    }
                } else {
                    CallEvent::Error {
                        error: wire(
                            INTERNAL_ERROR,
                            message,
                            Some(serde_json::json!({"reason": reason::INTERNAL})),
                        ),
                    }
                })
            }
        }
    }
}

/// The worker's span of one call: `execute_tool {tool}` for a tool (GenAI semantic
/// conventions), `{method} {name}` otherwise, with the call id and trace id every log line of
/// the call carries.
fn call_span(req: &CallRequest, pool: &PoolName, instance: &InstanceId, subject: &str) -> Span {
    if !mcpbus_telemetry::enabled() {
        // Only what log lines need: the attributes are for exported spans.
        return tracing::info_span!("call", trace_id = tracing::field::Empty, call_id = %req.call_id);
    }
    let target = req.params.get("name").and_then(serde_json::Value::as_str);
    let tool = target.filter(|_| req.method == "tools/call");
    let name = match (tool, target) {
        (Some(t), _) => format!("execute_tool {t}"),
        (None, Some(n)) if req.method == "prompts/get" => format!("prompts/get {n}"),
        _ => req.method.clone(),
    };
    tracing::info_span!(
        "call",
        otel.name = %name,
        otel.kind = "consumer",
        mcp.method.name = %req.method,
        gen_ai.operation.name = tool.map(|_| "execute_tool"),
        gen_ai.tool.name = tool,
        messaging.system = "nats",
        messaging.operation.type = "process",
        messaging.destination.name = subject,
        mcpbus.pool = %pool,
        mcpbus.instance = %instance,
        mcpbus.task.id = req.task_id.as_deref(),
        trace_id = tracing::field::Empty,
        call_id = %req.call_id,
    )
}

/// How a call that ran ends, and so how it is acknowledged.
enum Outcome {
    /// Send this final reply, then ACK (NAK if it could not be stored).
    Reply(CallEvent),
    /// Nobody waits (`cancelled`, or past the deadline: `timeout`): send nothing, ACK.
    Quiet(&'static str),
    /// The worker gave up on it while draining: send nothing, NAK, so another replica takes it.
    Abandoned,
}

impl Outcome {
    /// The outcome label of `mcpbus_worker_calls_total`.
    fn label(&self) -> &'static str {
        match self {
            Outcome::Reply(CallEvent::Result { result })
                if result.get("isError").and_then(|v| v.as_bool()) == Some(true) =>
            {
                "tool_error"
            }
            Outcome::Reply(CallEvent::Result { .. }) => "result",
            Outcome::Reply(_) => "error",
            Outcome::Quiet(why) => why,
            Outcome::Abandoned => "abandoned",
        }
    }
}
