//! Server-Sent Events framing, written by hand rather than with axum's `Sse` so that a
//! priming event carries the empty `data:` field the 2025-11-25 transport asks for, and so
//! that an idle open stream costs as little memory as possible (see docs/PERFORMANCE.md).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::Stream;
use http_body::Frame as BodyFrame;
use tokio::time::{Instant, Sleep};
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
    /// An event already encoded, written as it is: parts shared by every stream that
    /// delivers the event, around one part of the stream's own (fan-out: issue 18). No
    /// copy, no allocation: each part is a reference-counted `Bytes`.
    Encoded([Bytes; 3]),
}

impl Frame {
    /// The frame's bytes, in up to three parts written one after another.
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
            Frame::Encoded(parts) => parts.concat().into(),
        }
    }
}

/// The keep-alive comment sent when a stream has been quiet for the keep-alive interval.
const KEEP_ALIVE: &[u8] = b":\n\n";

/// An SSE response writing `frames`, with a keep-alive comment whenever the stream has been
/// quiet for `keep_alive`, holding `held` until the body is dropped. No task or channel per
/// stream: the frames are produced as the body is polled, and dropped with it when the
/// client goes away.
pub fn response(
    kind: &'static str,
    keep_alive: Duration,
    frames: impl Stream<Item = Frame> + Send + 'static,
    held: impl Send + Unpin + 'static,
) -> Response {
    let body = SseBody {
        frames: Box::pin(frames),
        keep_alive,
        quiet: Box::pin(tokio::time::sleep(keep_alive)),
        last_write: Instant::now(),
        rest: [Bytes::new(), Bytes::new()],
        ended: false,
        // `held` (a stream permit, say) lives exactly as long as the body.
        _held: (OpenStream::new(kind), held),
    };
    let mut resp = Response::new(Body::new(body));
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

/// The body of an SSE response: everything an open stream holds, in one allocation besides
/// its frame source and its timer (issue 18 trimmed it: no `unfold` future, no `Interval`).
struct SseBody<S, H> {
    frames: Pin<Box<S>>,
    keep_alive: Duration,
    /// Fires `keep_alive` after it was last armed. A frame does not re-arm it (that would
    /// touch the shared timer wheel once per stream per event, the fan-out's hot path);
    /// `last_write` is compared when it fires instead.
    quiet: Pin<Box<Sleep>>,
    last_write: Instant,
    /// The parts of an `Encoded` frame still to write, in order; empty ones are skipped.
    rest: [Bytes; 2],
    /// `frames` has ended (seen while coalescing): it must not be polled again.
    ended: bool,
    _held: H,
}

/// The most bytes of frames that are ready at once written as one body chunk.
const COALESCE_BYTES: usize = 64 * 1024;

impl<S, H> http_body::Body for SseBody<S, H>
where
    S: Stream<Item = Frame>,
    H: Unpin,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        for part in &mut this.rest {
            if !part.is_empty() {
                return Poll::Ready(Some(Ok(BodyFrame::data(std::mem::take(part)))));
            }
        }
        if this.ended {
            return Poll::Ready(None);
        }
        match this.frames.as_mut().poll_next(cx) {
            Poll::Ready(None) => {
                this.ended = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Frame::Encoded([first, second, third]))) => {
                // A fan-out event: its shared parts go out as they are, uncopied.
                this.last_write = Instant::now();
                this.rest = [second, third];
                return Poll::Ready(Some(Ok(BodyFrame::data(first))));
            }
            Poll::Ready(Some(frame)) => {
                this.last_write = Instant::now();
                let chunk = this.coalesce(frame.encode(), cx);
                return Poll::Ready(Some(Ok(BodyFrame::data(chunk))));
            }
            Poll::Pending => {}
        }
        while this.quiet.as_mut().poll(cx).is_ready() {
            let due = this.last_write + this.keep_alive;
            let now = Instant::now();
            if now >= due {
                this.last_write = now;
                this.quiet.as_mut().reset(now + this.keep_alive);
                return Poll::Ready(Some(Ok(BodyFrame::data(Bytes::from_static(KEEP_ALIVE)))));
            }
            // A frame was written since the timer was armed: quiet for less than the
            // interval yet.
            this.quiet.as_mut().reset(due);
        }
        Poll::Pending
    }
}

impl<S: Stream<Item = Frame>, H> SseBody<S, H> {
    /// `first`, followed by the frames that are ready without waiting, up to
    /// [`COALESCE_BYTES`]: a resumed stream replays its backlog in one write rather than one
    /// chunk (and one trip through hyper) per event (issue 18, P4). A live stream, whose next
    /// frame is not ready, pays one poll for this (which registers the waker it needs anyway).
    fn coalesce(&mut self, first: Bytes, cx: &mut Context<'_>) -> Bytes {
        let mut more = None::<bytes::BytesMut>;
        let mut len = first.len();
        while len < COALESCE_BYTES {
            match self.frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(frame)) => {
                    let bytes = frame.encode();
                    len += bytes.len();
                    more.get_or_insert_with(|| bytes::BytesMut::from(&first[..]))
                        .extend_from_slice(&bytes);
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        more.map_or(first, bytes::BytesMut::freeze)
    }
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
    F: Fn(Arc<BroadcastItem>) -> Fut + Send + 'static,
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
