//! Answering a queued tool call: as one JSON body, or as an SSE stream that carries the
//! call's progress and log notifications before the final response.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use bus_schema::mcp::{notification as note, result_type};
use bus_schema::messages::Lane;

use super::decorate::Decoration;
use super::jsonrpc::{error_message, json_response, notification, result_message};
use super::sse::{self, Frame};
use super::wire::{from_core, McpError};
use crate::core::{self, CallFeed, CallPlan, CoreError, LogLevel};
use crate::route::CallUpdate;
use crate::stream::EventId;
use crate::tasks::view::relate_to_task;

/// How one call's updates become client messages, for the caller's revision.
pub struct CallReply {
    plan: CallPlan,
    lane: Lane,
    decoration: Decoration,
}

impl CallReply {
    pub fn new(plan: CallPlan, lane: Lane, decoration: Decoration) -> Self {
        Self {
            plan,
            lane,
            decoration,
        }
    }

    /// The JSON-RPC id of the request this answers.
    pub fn id(&self) -> &Value {
        &self.plan.id
    }

    fn message(&self, update: CallUpdate) -> Option<Value> {
        let plan = &self.plan;
        match update {
            CallUpdate::Progress {
                progress,
                total,
                message,
            } => {
                let token = plan.progress_token.clone()?;
                let mut params = json!({"progressToken": token, "progress": progress});
                if let Some(t) = total {
                    params["total"] = json!(t);
                }
                if let Some(m) = message {
                    params["message"] = json!(m);
                }
                Some(notification(note::PROGRESS, params))
            }
            CallUpdate::Log {
                level,
                logger,
                data,
            } => {
                let min = plan.min_log?;
                if LogLevel::parse(&level).unwrap_or(LogLevel::DEBUG) < min {
                    return None;
                }
                let mut params = json!({"level": level, "data": data});
                if let Some(l) = logger {
                    params["logger"] = json!(l);
                }
                Some(notification(note::MESSAGE, params))
            }
            // Handled by the stream itself (see `sse`), or by the task path; nothing to show.
            CallUpdate::Detach | CallUpdate::Escalate => None,
            CallUpdate::ClientRequest {
                id,
                method,
                mut params,
            } => {
                if let Some(task) = &plan.related_task {
                    relate_to_task(&mut params, task);
                }
                let id = plan.answers.mint(&id);
                Some(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            }
            CallUpdate::Done(Ok(mut result)) if result_type::is_input_required(&result) => {
                let sealed = match &plan.mrtr {
                    Some(m) => m.finish(&mut result),
                    None => Err(core::not_allowed()),
                };
                if let Err(e) = sealed {
                    return Some(self.error(&e));
                }
                self.decoration.apply(&mut result, core::Cache::None);
                Some(result_message(&plan.id, result))
            }
            CallUpdate::Done(Ok(mut result)) => {
                self.decoration.apply(&mut result, plan.cache);
                if let Some(task) = &plan.related_task {
                    relate_to_task(&mut result, task);
                }
                Some(result_message(&plan.id, result))
            }
            CallUpdate::Done(Err(e)) => Some(self.error(&e.into())),
        }
    }

    fn error(&self, e: &CoreError) -> Value {
        error_message(&self.plan.id, &from_core(e, self.lane))
    }

    /// The call's failure as the client would see it, if it fails at once with a status of
    /// its own (a missing capability is 400): a stream, once started, could not carry it.
    pub async fn early_failure(&mut self, within: Duration) -> Option<McpError> {
        let CallFeed::Core(call) = &mut self.plan.feed else {
            return None;
        };
        let e = from_core(&call.early_failure(within).await?.into(), self.lane);
        (e.status != StatusCode::OK).then_some(e)
    }

    /// Waits for the outcome and answers with one JSON body.
    pub async fn json(mut self) -> Response {
        while let Some((_, update)) = self.plan.next().await {
            match update {
                CallUpdate::Done(Ok(result)) => {
                    let body = self.message(CallUpdate::Done(Ok(result)));
                    return json_response(StatusCode::OK, &body.unwrap_or_default());
                }
                CallUpdate::Done(Err(e)) => return self.failed(&e.into()),
                // One JSON body has no room for a request to the client before the answer;
                // waiting would only end in a timeout, so say why at once.
                CallUpdate::ClientRequest { method, .. } => {
                    return self.failed(&CoreError::NeedsStream { method })
                }
                _ => {}
            }
        }
        self.failed(&CoreError::Internal(
            "the call ended without an answer".into(),
        ))
    }

    fn failed(&self, e: &CoreError) -> Response {
        let wire = from_core(e, self.lane);
        json_response(wire.status, &error_message(&self.plan.id, &wire))
    }

    /// Streams the call's notifications, then its response, then closes. A stored stream
    /// starts with a priming event (its position, no data) and, when `release` fires (the
    /// gateway is draining), ends with `retry:` so the client resumes it on another node.
    /// Dropping the response (client gone) drops the feed and its subscriptions.
    pub fn sse(self, keep_alive: Duration, release: CancellationToken) -> Response {
        struct State {
            reply: CallReply,
            release: CancellationToken,
            priming: Option<EventId>,
            resumable: bool,
            done: bool,
        }
        let priming = self.plan.feed.position();
        let state = State {
            reply: self,
            resumable: priming.is_some(),
            priming,
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
                    n = st.reply.plan.next() => n,
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
        sse::response("request", keep_alive, frames, ())
    }
}

/// How long a client released from a draining gateway waits before resuming elsewhere.
pub const RETRY_AFTER_RELEASE: Duration = Duration::from_millis(500);

/// How long a client whose stream a worker detached waits before polling for the rest.
pub const RETRY_AFTER_DETACH: Duration = Duration::from_millis(500);
