//! Server-Sent Events framing, written by hand rather than with axum's `Sse` so that a
//! priming event carries the empty `data:` field the 2025-11-25 transport asks for, and so
//! that an open stream costs one small task and channel, nothing more.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::mpsc;

/// One thing written to an SSE stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `id: <id>` with an empty `data:`: tells the client where it can resume from.
    Priming(String),
    /// A JSON-RPC message, with its event id when the stream is resumable.
    Message { id: Option<String>, data: String },
    /// `retry: <ms>`: the server is about to close; reconnect after this long.
    Retry(Duration),
}

impl Frame {
    fn encode(&self) -> Bytes {
        match self {
            Frame::Priming(id) => format!("id: {id}\ndata: \n\n").into(),
            // Serialized JSON has no raw newlines, so one `data:` line holds it.
            Frame::Message { id: Some(id), data } => {
                format!("event: message\nid: {id}\ndata: {data}\n\n").into()
            }
            Frame::Message { id: None, data } => format!("event: message\ndata: {data}\n\n").into(),
            Frame::Retry(after) => format!("retry: {}\n\n", after.as_millis()).into(),
        }
    }
}

/// The keep-alive comment sent when a stream has been quiet for the keep-alive interval.
const KEEP_ALIVE: &[u8] = b":\n\n";

/// Frames are produced by `produce`, which runs as its own task and stops when the client
/// goes away (the send fails, or the task is aborted with the response body).
pub fn response<F, Fut>(keep_alive: Duration, produce: F) -> Response
where
    F: FnOnce(mpsc::Sender<Frame>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    let task = AbortOnDrop(tokio::spawn(produce(tx)));
    let state = (
        rx,
        task,
        tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive),
    );
    let body = futures::stream::unfold(state, |(mut rx, task, mut tick)| async move {
        let bytes = tokio::select! {
            frame = rx.recv() => {
                tick.reset();
                frame?.encode()
            }
            _ = tick.tick() => Bytes::from_static(KEEP_ALIVE),
        };
        Some((Ok::<_, Infallible>(bytes), (rx, task, tick)))
    });
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_the_sse_format() {
        assert_eq!(
            Frame::Priming("r:a:1".into()).encode(),
            "id: r:a:1\ndata: \n\n"
        );
        assert_eq!(
            Frame::Message {
                id: Some("g:2".into()),
                data: "{}".into()
            }
            .encode(),
            "event: message\nid: g:2\ndata: {}\n\n"
        );
        assert_eq!(
            Frame::Retry(Duration::from_millis(500)).encode(),
            "retry: 500\n\n"
        );
    }
}
