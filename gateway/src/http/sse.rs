//! Server-Sent Events framing, written by hand rather than with axum's `Sse` so that a
//! priming event carries the empty `data:` field the 2025-11-25 transport asks for, and so
//! that an idle open stream costs as little memory as possible (see docs/PERFORMANCE.md).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::metrics::OpenStream;
use crate::stream::{BroadcastItem, Follower};

/// One thing written to an SSE stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `id: <id>` with an empty `data:`: tells the client where it can resume from.
    Priming(String),
    /// A JSON-RPC message, with its event id when the stream is resumable.
    Message { id: Option<String>, data: String },
    /// `retry: <ms>`: the server is about to close; reconnect after this long.
    Retry(Duration),
    /// A close at a position: `id` moves the client's `Last-Event-ID` past the event that
    /// caused it, so resuming does not close again at once.
    RetryAt { id: String, after: Duration },
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
            Frame::RetryAt { id, after } => {
                format!("id: {id}\nretry: {}\ndata: \n\n", after.as_millis()).into()
            }
        }
    }
}

/// The keep-alive comment sent when a stream has been quiet for the keep-alive interval.
const KEEP_ALIVE: &[u8] = b":\n\n";

/// An SSE response writing `frames`, with a keep-alive comment whenever the stream has been
/// quiet for `keep_alive`, holding `held` until the body is dropped. No task or channel per stream: the frames are produced as the
/// body is polled, and dropped with it when the client goes away.
pub fn response(
    kind: &'static str,
    keep_alive: Duration,
    frames: impl Stream<Item = Frame> + Send + 'static,
    held: impl Send + 'static,
) -> Response {
    let tick = tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
    // `held` (a stream permit, say) lives exactly as long as the body.
    let open = (OpenStream::new(kind), held);
    let body = futures::stream::unfold(
        // Fused: coalescing may see the end first, and the stream is polled once more then.
        (Box::pin(frames.fuse()), tick, open),
        |(mut frames, mut tick, open)| async move {
            // `next()` is cancel-safe: a frame half-produced when the tick wins stays in `frames`.
            let bytes = tokio::select! {
                frame = frames.next() => {
                    tick.reset();
                    coalesce(frame?.encode(), &mut frames)
                }
                _ = tick.tick() => Bytes::from_static(KEEP_ALIVE),
            };
            Some((Ok::<_, Infallible>(bytes), (frames, tick, open)))
        },
    );
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

/// The most bytes of frames that are ready at once written as one body chunk.
const COALESCE_BYTES: usize = 64 * 1024;

/// `first`, followed by the frames `frames` has ready without waiting, up to
/// [`COALESCE_BYTES`]: a resumed stream replays its backlog in one write rather than one
/// chunk (and one trip through hyper) per event (issue 18, P4). A live stream, whose next
/// frame is not ready, pays one poll for this.
fn coalesce(first: Bytes, frames: &mut (impl Stream<Item = Frame> + Unpin)) -> Bytes {
    let mut more = None::<bytes::BytesMut>;
    let mut len = first.len();
    while len < COALESCE_BYTES {
        // `next()` is cancel-safe, so dropping it when not ready loses nothing.
        let Some(Some(frame)) = frames.next().now_or_never() else {
            break;
        };
        let bytes = frame.encode();
        len += bytes.len();
        more.get_or_insert_with(|| bytes::BytesMut::from(&first[..]))
            .extend_from_slice(&bytes);
    }
    more.map_or(first, bytes::BytesMut::freeze)
}

/// Frames rendered from a stream's broadcast follower, until `release` fires (the gateway
/// is draining): then `last`, and the end of the stream. When `end` fires (the stream was
/// replaced, or its session ended) the stream ends at once.
pub fn follow<F, Fut>(
    follower: Follower,
    release: CancellationToken,
    end: CancellationToken,
    render: F,
    last: Frame,
) -> impl Stream<Item = Frame> + Send + 'static
where
    F: Fn(BroadcastItem) -> Fut + Send + 'static,
    Fut: Future<Output = Option<Frame>> + Send,
{
    let state = (follower, (release, end), render, Some(last));
    futures::stream::unfold(state, |(mut follower, stops, render, last)| async move {
        let last = last?;
        loop {
            let item = tokio::select! {
                item = follower.next() => item,
                _ = stops.1.cancelled() => return None,
                _ = stops.0.cancelled() => return Some((last, (follower, stops, render, None))),
            };
            if let Some(frame) = render(item).await {
                return Some((frame, (follower, stops, render, Some(last))));
            }
        }
    })
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
