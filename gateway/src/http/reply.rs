//! Answering a queued tool call: as one JSON body, or as an SSE stream that carries the
//! call's progress and log notifications before the final response.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::jsonrpc::{error_message, json_response, notification, result_message};
use super::methods::log_severity;
use crate::route::{CallUpdate, PendingCall};

/// How one call's updates become client messages.
pub struct CallReply {
    pub id: Value,
    /// `_meta.progressToken` of the request; progress is only sent when there is one.
    pub progress_token: Option<Value>,
    /// Lowest log severity forwarded; `None` forwards no log messages.
    pub min_log: Option<usize>,
    /// Lane-specific additions to the final result (e.g. `resultType`).
    pub finish: fn(&mut Value),
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
            CallUpdate::Done(Ok(mut result)) => {
                (self.finish)(&mut result);
                Some(result_message(&self.id, result))
            }
            CallUpdate::Done(Err(e)) => Some(error_message(&self.id, &e)),
        }
    }

    /// Waits for the outcome and answers with one JSON body.
    pub async fn json(self, call: PendingCall) -> Response {
        match call.outcome().await {
            Ok(mut result) => {
                (self.finish)(&mut result);
                json_response(StatusCode::OK, &result_message(&self.id, result))
            }
            Err(e) => json_response(e.status, &error_message(&self.id, &e)),
        }
    }

    /// Streams the call's notifications, then its response, then closes. Dropping the
    /// response (client gone) drops the `PendingCall`, which stops routing its replies here.
    pub fn sse(self, mut call: PendingCall, keep_alive: Duration) -> Response {
        let stream = async_stream(move |tx| async move {
            while let Some(update) = call.next().await {
                if let Some(msg) = self.message(update) {
                    if tx
                        .send(Event::default().event("message").data(msg.to_string()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        sse_response(stream, keep_alive)
    }
}

/// An SSE response with the headers every stream needs.
pub fn sse_response(
    stream: impl futures::Stream<Item = Result<Event, Infallible>> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    let mut resp = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response();
    // Tells nginx-style proxies not to buffer the stream.
    resp.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    resp
}

/// A stream fed by a producer task; the task stops when the stream is dropped.
fn async_stream<F, Fut>(produce: F) -> impl futures::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let task = tokio::spawn(produce(tx));
    let guard = AbortOnDrop(task);
    futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|e| (Ok(e), (rx, guard)))
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
