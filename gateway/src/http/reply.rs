//! Answering a queued tool call: as one JSON body, or as an SSE stream that carries the
//! call's progress and log notifications before the final response.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::jsonrpc::{error_message, json_response, notification, result_message};
use super::methods::log_severity;
use super::mrtr::{self, Mrtr};
use super::sse::{self, Frame};
use crate::metrics::METRICS;
use crate::route::{CallUpdate, PendingCall};
use crate::stream::{EventId, RequestStream};

/// Where a call's updates come from.
pub enum CallFeed {
    /// Core-NATS replies to this gateway (stateless lane): not resumable.
    Core(Box<PendingCall>),
    /// The session events stream (session lane): every update has an event id, and the
    /// stream can be resumed on any node.
    Stored(Box<RequestStream>),
}

impl CallFeed {
    async fn next(&mut self) -> Option<(Option<EventId>, CallUpdate)> {
        match self {
            CallFeed::Core(call) => call.next().await.map(|u| (None, u)),
            CallFeed::Stored(stream) => stream.next().await.map(|(id, u)| (Some(id), u)),
        }
    }

    fn position(&self) -> Option<EventId> {
        match self {
            CallFeed::Core(_) => None,
            CallFeed::Stored(stream) => Some(stream.position()),
        }
    }
}

/// How one call's updates become client messages.
pub struct CallReply {
    pub id: Value,
    /// `_meta.progressToken` of the request; progress is only sent when there is one.
    pub progress_token: Option<Value>,
    /// Lowest log severity forwarded; `None` forwards no log messages.
    pub min_log: Option<usize>,
    /// Lane-specific additions to the final result (e.g. `resultType`).
    pub finish: fn(&mut Value),
    /// Fields merged into the final result (stateless-lane caching hints on reads).
    pub extra: Option<Value>,
    /// Set where the request may be answered with an `InputRequiredResult`.
    pub mrtr: Option<Mrtr>,
    /// The 2025-11-25 task these messages belong to: requests to the client and the result
    /// then carry `_meta["io.modelcontextprotocol/related-task"]`.
    pub related_task: Option<String>,
}

/// Marks a message's params or result as belonging to task `task_id` (2025-11-25).
pub fn relate_to_task(body: &mut Value, task_id: &str) {
    if let Some(obj) = body.as_object_mut() {
        let meta = obj.entry("_meta").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.insert(
                "io.modelcontextprotocol/related-task".into(),
                json!({"taskId": task_id}),
            );
        }
    }
}

impl CallReply {
    fn message(&self, update: CallUpdate) -> Option<Value> {
        match update {
            CallUpdate::Progress {
                progress,
                total,
                message,
            } => {
                let token = self.progress_token.clone()?;
                let mut params = json!({"progressToken": token, "progress": progress});
                if let Some(t) = total {
                    params["total"] = json!(t);
                }
                if let Some(m) = message {
                    params["message"] = json!(m);
                }
                Some(notification("notifications/progress", params))
            }
            CallUpdate::Log {
                level,
                logger,
                data,
            } => {
                let min = self.min_log?;
                if log_severity(&level).unwrap_or(0) < min {
                    return None;
                }
                let mut params = json!({"level": level, "data": data});
                if let Some(l) = logger {
                    params["logger"] = json!(l);
                }
                Some(notification("notifications/message", params))
            }
            // Handled by the stream itself (see `sse`), or by the task path; nothing to show.
            CallUpdate::Detach | CallUpdate::Escalate => None,
            CallUpdate::ClientRequest {
                id,
                method,
                mut params,
            } => {
                if let Some(task) = &self.related_task {
                    relate_to_task(&mut params, task);
                }
                Some(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            }
            CallUpdate::Done(Ok(mut result)) if mrtr::is_input_required(&result) => {
                let sealed = match &self.mrtr {
                    Some(m) => m.finish(&mut result),
                    None => Err(mrtr::not_allowed()),
                };
                if let Err(e) = sealed {
                    return self.message(CallUpdate::Done(Err(e)));
                }
                METRICS
                    .tool_calls
                    .with_label_values(&["input_required"])
                    .inc();
                (self.finish)(&mut result);
                Some(result_message(&self.id, result))
            }
            CallUpdate::Done(Ok(mut result)) => {
                let failed = result
                    .get("isError")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let outcome = if failed { "tool_error" } else { "result" };
                METRICS.tool_calls.with_label_values(&[outcome]).inc();
                (self.finish)(&mut result);
                if let Some(task) = &self.related_task {
                    relate_to_task(&mut result, task);
                }
                if let (Some(Value::Object(extra)), Some(obj)) =
                    (&self.extra, result.as_object_mut())
                {
                    obj.extend(extra.clone());
                }
                Some(result_message(&self.id, result))
            }
            CallUpdate::Done(Err(e)) => {
                METRICS.tool_calls.with_label_values(&["error"]).inc();
                Some(error_message(&self.id, &e))
            }
        }
    }

    /// Waits for the outcome and answers with one JSON body.
    pub async fn json(self, mut feed: CallFeed) -> Response {
        while let Some((_, update)) = feed.next().await {
            match update {
                CallUpdate::Done(outcome) => return self.done(outcome),
                // One JSON body has no room for a request to the client before the answer;
                // waiting would only end in a timeout, so say why at once.
                CallUpdate::ClientRequest { method, .. } => {
                    let e = crate::error::McpError::internal(format!(
                        "the tool asked the client for {method}, which a JSON response cannot \
                         carry; this gateway runs with --json-tool-calls, use an SSE gateway"
                    ))
                    .with_data(json!({"reason": "needs_stream"}));
                    return self.done(Err(e));
                }
                _ => {}
            }
        }
        let e = crate::error::McpError::internal("the call ended without an answer");
        json_response(e.status, &error_message(&self.id, &e))
    }

    /// The one JSON body answering with the call's outcome.
    pub fn done(&self, outcome: Result<Value, crate::error::McpError>) -> Response {
        let status = outcome.as_ref().err().map_or(StatusCode::OK, |e| e.status);
        let body = self.message(CallUpdate::Done(outcome)).unwrap_or_default();
        json_response(status, &body)
    }

    /// Streams the call's notifications, then its response, then closes. A stored stream
    /// starts with a priming event (its position, no data) and, when `release` fires (the
    /// gateway is draining), ends with `retry:` so the client resumes it on another node.
    /// Dropping the response (client gone) drops the feed and its subscriptions.
    pub fn sse(self, feed: CallFeed, keep_alive: Duration, release: CancellationToken) -> Response {
        struct State {
            reply: CallReply,
            feed: CallFeed,
            release: CancellationToken,
            priming: Option<EventId>,
            resumable: bool,
            done: bool,
        }
        let priming = feed.position();
        let state = State {
            reply: self,
            resumable: priming.is_some(),
            priming,
            feed,
            release,
            done: false,
        };
        let frames = futures::stream::unfold(state, |mut st| async move {
            if st.done {
                return None;
            }
            if let Some(id) = st.priming.take() {
                return Some((Frame::Priming(id.to_string()), st));
            }
            loop {
                let next = tokio::select! {
                    n = st.feed.next() => n,
                    _ = st.release.cancelled(), if st.resumable => {
                        st.done = true;
                        return Some((Frame::Retry(RETRY_AFTER_RELEASE), st));
                    }
                };
                let (id, update) = next?;
                if let (CallUpdate::Detach, Some(id)) = (&update, &id) {
                    st.done = true;
                    let frame = Frame::RetryAt {
                        id: id.to_string(),
                        after: RETRY_AFTER_DETACH,
                    };
                    return Some((frame, st));
                }
                if let Some(msg) = st.reply.message(update) {
                    let frame = Frame::Message {
                        id: id.map(|i| i.to_string()),
                        data: msg.to_string(),
                    };
                    return Some((frame, st));
                }
            }
        });
        sse::response("request", keep_alive, frames)
    }
}

/// How long a client released from a draining gateway waits before resuming elsewhere.
pub const RETRY_AFTER_RELEASE: Duration = Duration::from_millis(500);

/// How long a client whose stream a worker detached waits before polling for the rest.
pub const RETRY_AFTER_DETACH: Duration = Duration::from_millis(500);
