//! Publishing calls and routing replies back to the request that waits for them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, context::PublishError};
use bus_schema::failover::{self, GaveUp, Repeat};
use bus_schema::mcp::ProtocolVersion;
use bus_schema::messages::{decode, encode, CallReply, CallRequest, ClientAnswer, Lane};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::principal::Principal;
use bus_schema::{headers, subjects, PROTOCOL_VERSION};
use dashmap::DashMap;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::tracker::{CallTracker, CallUpdate};
use super::{CallError, RouteError};
use crate::catalog::ToolRoute;
use crate::error::GatewayError;
use crate::store_limits::{Store, StoreRefused};

/// Reply bytes one call may hold while its client is not reading them (stateless lane: no
/// store to read them again from). A client that falls further behind is cut off and the
/// work called off, so a client that never reads costs at most this much. One reply is
/// always taken, however large.
pub const CALL_BUFFER_BYTES: usize = 1024 * 1024;

/// Where one waiting call's replies go, and how many of their bytes wait there.
struct Route {
    tx: mpsc::UnboundedSender<(CallReply, usize)>,
    buffered: Arc<AtomicUsize>,
    /// The pool the call went to: only its workers may answer it (ADR 0013).
    pool: PoolName,
}

type Pending = DashMap<String, Route>;

/// Sends calls to worker pools and hands their replies to the waiting requests.
#[derive(Clone)]
pub struct Dispatcher {
    nats: async_nats::Client,
    js: jetstream::Context,
    /// This gateway's id: the middle token of its reply subjects.
    gateway: InstanceId,
    pending: Arc<Pending>,
    /// The calls work queue, to take back a call whose client went away before it ran.
    calls: jetstream::stream::Stream,
}

/// What a client-facing call needs besides its route.
#[derive(Debug, Clone)]
pub struct CallSpec {
    pub method: String,
    pub params: Value,
    pub lane: Lane,
    pub protocol_version: ProtocolVersion,
    pub client_capabilities: Value,
    /// The task this call may become (see [`CallRequest::task_id`]).
    pub task_id: Option<String>,
    /// The verified caller, passed to the worker (never its token).
    pub principal: Option<Principal>,
}

impl Dispatcher {
    /// Subscribes to this gateway's replies and starts routing them.
    pub async fn start(
        nats: async_nats::Client,
        gateway: InstanceId,
        calls: jetstream::stream::Stream,
        stop: CancellationToken,
    ) -> Result<Self, GatewayError> {
        let mut replies = nats
            .subscribe(subjects::gateway_replies(&gateway))
            .await
            .map_err(|e| GatewayError::Subscribe(e.into()))?;
        let pending: Arc<Pending> = Arc::new(DashMap::new());
        let routes = pending.clone();
        let cutoff = nats.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = replies.next() => match m { Some(m) => m, None => return },
                };
                let Some((pool, call_id)) = subjects::parse_reply(&msg.subject) else {
                    continue;
                };
                match decode::<CallReply>(&msg.payload) {
                    // A reply for a call nobody waits for any more (client gone, timed out)
                    // is dropped here.
                    Ok(reply) => {
                        let size = msg.payload.len();
                        let overflow = match routes.get(call_id) {
                            // Only the pool the call went to may answer it: permissions let
                            // a pool's workers publish replies under their own pool only.
                            Some(route) if route.pool.as_str() != pool => {
                                tracing::warn!(%call_id, %pool, expected = %route.pool, "ignoring a reply from another pool");
                                false
                            }
                            Some(route) => {
                                let before = route.buffered.fetch_add(size, Ordering::Relaxed);
                                let over = before > 0 && before + size > CALL_BUFFER_BYTES;
                                if !over {
                                    let _ = route.tx.send((reply, size));
                                }
                                over
                            }
                            None => false,
                        };
                        if overflow {
                            // Dropping the sender ends the call for its reader; the worker
                            // stops on the cancel.
                            let Some((_, route)) = routes.remove(call_id) else {
                                continue;
                            };
                            tracing::info!(%call_id, "client not reading a call's replies; cut off");
                            crate::metrics::METRICS.cut_off.inc();
                            let _ = cutoff
                                .publish(
                                    subjects::cancel(&route.pool, call_id),
                                    bytes::Bytes::new(),
                                )
                                .await;
                        }
                    }
                    Err(e) => tracing::warn!(%call_id, error = %e, "ignoring unreadable reply"),
                }
            }
        });
        Ok(Self {
            js: jetstream::new(nats.clone()),
            nats,
            gateway,
            pending,
            calls,
        })
    }

    /// Queues a call whose replies come back on core NATS to this gateway.
    pub async fn call(
        &self,
        route: &ToolRoute,
        spec: CallSpec,
        default_timeout: Duration,
    ) -> Result<PendingCall, RouteError> {
        let call_id = new_call_id();
        let reply_to = subjects::call_reply(&route.pool, &self.gateway, &call_id);
        let (request, tracker) = prepare(
            route,
            spec,
            default_timeout,
            call_id.clone(),
            reply_to,
            false,
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let buffered = Arc::new(AtomicUsize::new(0));
        let route_back = Route {
            tx,
            buffered: buffered.clone(),
            pool: route.pool.clone(),
        };
        self.pending.insert(call_id.clone(), route_back);
        let mut pending = PendingCall {
            rx,
            buffered,
            _guard: PendingGuard {
                pending: self.pending.clone(),
                call_id: call_id.clone(),
            },
            tracker,
            peeked: None,
            abandon: None,
        };
        let queued_at = self.publish(route, &request).await?;
        pending.abandon = Some(Abandon {
            nats: self.nats.clone(),
            calls: self.calls.clone(),
            subject: request.cancel_subject(&route.pool),
            queued_at,
            trace: mcpbus_telemetry::current(),
        });
        Ok(pending)
    }

    /// Hands the client's answer to request `seq` of call `call_id` to the worker of `pool`
    /// waiting for it, wherever it runs. Core NATS: the worker is waiting, or the answer is
    /// moot.
    pub async fn forward_answer(
        &self,
        pool: &PoolName,
        call_id: &str,
        seq: u32,
        answer: &ClientAnswer,
    ) {
        let subject = subjects::client_answer(pool, call_id, seq);
        let mut hdrs = async_nats::HeaderMap::new();
        mcpbus_telemetry::inject_current(&mut hdrs);
        if let Err(e) = self
            .nats
            .publish_with_headers(subject, hdrs, encode(answer))
            .await
        {
            tracing::warn!(error = %e, "could not forward the client's answer");
        }
    }

    /// Queues `request` for its pool, waiting for JetStream to store it; returns its
    /// position in the calls stream. Rides out a leader change for at most a fresh
    /// failover budget.
    pub async fn publish(
        &self,
        route: &ToolRoute,
        request: &CallRequest,
    ) -> Result<u64, RouteError> {
        self.publish_within(route, request, failover::deadline())
            .await
    }

    /// Like [`Dispatcher::publish`], retrying until `until` at most: a budget the caller
    /// already spent part of (a session-lane stream stores its `open` record first, and the
    /// two share one budget, ADR 0031).
    pub async fn publish_within(
        &self,
        route: &ToolRoute,
        request: &CallRequest,
        until: Instant,
    ) -> Result<u64, RouteError> {
        let subject = subjects::call(&route.pool);
        // The producer span (messaging semantic conventions): the worker's queue-wait and
        // handler spans are its children.
        let span = mcpbus_telemetry::exported_only(|| {
            tracing::info_span!(
                "publish",
                otel.name = %format_args!("send {subject}"),
                otel.kind = "producer",
                messaging.system = "nats",
                messaging.operation.type = "send",
                messaging.destination.name = %subject,
                messaging.message.id = %request.call_id,
                mcpbus.pool = %route.pool,
                mcpbus.task.id = request.task_id.as_deref(),
            )
        });
        self.publish_once_stored(subject, request, until)
            .instrument(span)
            .await
    }

    async fn publish_once_stored(
        &self,
        subject: String,
        request: &CallRequest,
        until: Instant,
    ) -> Result<u64, RouteError> {
        let mut hdrs = async_nats::HeaderMap::new();
        hdrs.insert(headers::MSG_ID, request.call_id.as_str());
        hdrs.insert(headers::PROTOCOL, PROTOCOL_VERSION.to_string().as_str());
        hdrs.insert(headers::METHOD, request.method.as_str());
        mcpbus_telemetry::inject_current(&mut hdrs);
        let payload = encode(request);
        // The same `Nats-Msg-Id` on every attempt: the stream keeps one copy (ADR 0031).
        // Never past the call's own deadline.
        let deadline = until.min(
            Instant::now() + Duration::from_millis(request.deadline_ms.saturating_sub(unix_ms())),
        );
        let stored = failover::retry(deadline, Repeat::Always, || {
            failover::store_once(
                &self.nats,
                &self.js,
                subject.clone(),
                hdrs.clone(),
                payload.clone(),
            )
        })
        .await;
        match stored {
            Ok(ack) => {
                tracing::debug!(seq = ack.sequence, "call queued");
                Ok(ack.sequence)
            }
            Err(GaveUp::Failed(e)) => Err(classify(e)),
            Err(unanswered) => Err(RouteError::Publish(unanswered.to_string())),
        }
    }
}

/// A full work queue (discard-new at its message or byte limit) or a call too large for it,
/// by their JetStream codes (ADR 0007); anything else is the bus failing.
fn classify(e: PublishError) -> RouteError {
    match StoreRefused::classify(Store::Calls, &e) {
        Some(StoreRefused::Full(_)) => RouteError::QueueFull,
        Some(refused) => RouteError::Store(refused),
        None => RouteError::Publish(e.to_string()),
    }
}

/// A fresh call id: 128 random bits in hex, a valid subject token.
pub fn new_call_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Builds the bus message for a call and the tracker that will interpret its replies.
pub fn prepare(
    route: &ToolRoute,
    spec: CallSpec,
    default_timeout: Duration,
    call_id: String,
    reply_to: String,
    reply_durable: bool,
) -> (CallRequest, CallTracker) {
    let timeout = route.timeout.unwrap_or(default_timeout);
    // Every log line of the request from here on names the call (the MCP span's field).
    tracing::Span::current().record("call_id", call_id.as_str());
    let request = CallRequest {
        protocol: PROTOCOL_VERSION,
        call_id,
        method: spec.method,
        params: spec.params,
        reply_to,
        deadline_ms: unix_ms() + timeout.as_millis() as u64,
        lane: spec.lane,
        protocol_version: spec.protocol_version.to_string(),
        client_capabilities: spec.client_capabilities,
        reply_durable,
        task_id: spec.task_id,
        cancel_on: None,
        principal: spec.principal,
    };
    let mut tracker = CallTracker::new(
        request.call_id.clone(),
        route.name().to_owned(),
        route.pool.clone(),
        timeout,
        Instant::now() + timeout,
    );
    // Only tool calls: the other methods queued this way are named by what the client
    // asked for (a resource URI), which must not become a label.
    if request.method == bus_schema::mcp::Method::ToolsCall.as_str() {
        tracker = tracker.metered();
    }
    (request, tracker)
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Removes the call's reply channel when the waiting request goes away.
struct PendingGuard {
    pending: Arc<Pending>,
    call_id: String,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.pending.remove(&self.call_id);
    }
}

/// A queued call whose replies arrive on core NATS, yielding its updates until the final one.
pub struct PendingCall {
    /// Bounded by bytes, not by count: see [`CALL_BUFFER_BYTES`].
    rx: mpsc::UnboundedReceiver<(CallReply, usize)>,
    buffered: Arc<AtomicUsize>,
    /// Held only for its drop: removes the call's reply channel when the request goes away.
    _guard: PendingGuard,
    tracker: CallTracker,
    /// An update taken by [`PendingCall::early_failure`] and not yet handed out.
    peeked: Option<CallUpdate>,
    /// How to call the work off if the request goes away before its answer.
    abandon: Option<Abandon>,
}

/// What cancelling an abandoned call takes.
struct Abandon {
    nats: async_nats::Client,
    calls: jetstream::stream::Stream,
    subject: String,
    queued_at: u64,
    /// The request's trace context: the cancel is sent after the request's task is gone.
    trace: Option<mcpbus_telemetry::TraceContext>,
}

impl Drop for PendingCall {
    /// A request dropped before its final answer (the client closed the stream, 2026-07-28
    /// cancellation) calls the work off: out of the queue if no worker took it, and a
    /// cancellation for the worker running it.
    fn drop(&mut self) {
        if self.tracker.is_done() {
            return;
        }
        self.tracker.abandoned();
        let Some(a) = self.abandon.take() else { return };
        tokio::spawn(async move {
            let _ = a.calls.delete_message(a.queued_at).await;
            let mut hdrs = async_nats::HeaderMap::new();
            if let Some(trace) = &a.trace {
                trace.write_nats(&mut hdrs);
            }
            let _ = a
                .nats
                .publish_with_headers(a.subject, hdrs, bytes::Bytes::new())
                .await;
        });
    }
}

impl PendingCall {
    /// The call's failure, if it fails within `within`: some failures travel with an HTTP
    /// status of their own, which a streamed answer could no longer carry. Whatever arrives
    /// is kept for [`PendingCall::next`], so a streamed answer is not delayed by more than
    /// `within`.
    pub async fn early_failure(&mut self, within: Duration) -> Option<CallError> {
        if self.peeked.is_none() {
            self.peeked = tokio::time::timeout(within, self.next())
                .await
                .ok()
                .flatten();
        }
        match &self.peeked {
            Some(CallUpdate::Done(Err(e))) => Some(e.clone()),
            _ => None,
        }
    }

    /// The next update, or `None` after the final one.
    pub async fn next(&mut self) -> Option<CallUpdate> {
        if let Some(update) = self.peeked.take() {
            return Some(update);
        }
        while !self.tracker.is_done() {
            match tokio::time::timeout_at(self.tracker.deadline(), self.rx.recv()).await {
                Ok(Some((reply, size))) => {
                    self.buffered.fetch_sub(size, Ordering::Relaxed);
                    if let Some(update) = self.tracker.observe(reply) {
                        return Some(update);
                    }
                }
                // The router dropped the sender: the client fell too far behind.
                Ok(None) => return Some(self.tracker.cut_off()),
                Err(_) => return Some(self.tracker.timed_out()),
            }
        }
        None
    }
}
