//! The header-read and idle keep-alive deadlines of one connection, enforced on its reads.
//!
//! A connection is *busy* while a request is in flight: from the moment hyper hands us a
//! complete request head until hyper drops the response body. A busy connection has no
//! deadline here: its request body has the body-read timeout (`http/`), and an open SSE
//! stream may stay quiet for as long as it likes. A connection that is not busy is either
//! *idle* (it has served a request and nothing of the next one has arrived: the idle
//! deadline) or *reading a head* (it is new, or a byte of the next request has arrived: the
//! header-read deadline, from that moment). When the deadline passes, the next read fails
//! with `TimedOut`, hyper gives up on the connection and the socket is closed.
//!
//! Writes have a deadline of their own, in every phase: a write the client does not make
//! room for within the write deadline (its socket buffer stays full: it stopped reading)
//! fails with `TimedOut`, so a client too far behind an SSE stream is cut off and what the
//! stream holds for it is freed. On the session lane it resumes with `Last-Event-ID` and
//! loses nothing; a stateless call is cancelled, as a closed stream means.
//!
//! On HTTP/2 the connection is busy while any of its streams is in flight. Bytes that
//! arrive on an idle HTTP/2 connection do not start the header-read deadline: they are
//! frames (PING, SETTINGS, WINDOW_UPDATE) as often as a new request, and a request head on
//! HTTP/2 is bounded by the header-list cap, not by the time it takes. Such a connection
//! is closed at the idle deadline unless a request begins.
//!
//! Why not hyper's own `header_read_timeout`: hyper starts it whenever it waits for a request
//! head, including the idle time between keep-alive requests, so it cannot give idle
//! connections a longer life than half-sent heads. Behind a load balancer that pools
//! connections the idle deadline must outlast the balancer's own (60 s is common), while a
//! head that takes 10 s to arrive is already an attack.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::metrics::METRICS;

/// The two deadlines (see `Config`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadlines {
    pub header: Duration,
    pub idle: Duration,
    pub write: Duration,
}

/// What the service tells the IO about requests, shared by both.
#[derive(Default)]
pub(super) struct Activity {
    /// Requests whose response body hyper has not yet dropped.
    in_flight: AtomicUsize,
    /// Requests begun on this connection, so a request that came and went between two reads
    /// still restarts the idle deadline.
    begun: AtomicU64,
    /// The connection's last read. Woken when the last request in flight ends, so that the
    /// idle deadline starts even if hyper has no other reason to read again.
    reader: AtomicWaker,
    /// Set once a request arrived over HTTP/2 (see the module's documentation).
    multiplexed: AtomicBool,
}

impl Activity {
    /// Marks a request as in flight until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.begun.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Notes that the connection speaks HTTP/2.
    pub fn multiplexed(&self) {
        self.multiplexed.store(true, Ordering::Release);
    }
}

/// One request in flight.
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.reader.wake();
        }
    }
}

/// A response body that keeps its request in flight until hyper drops it.
pub(super) struct InFlightBody {
    body: Body,
    /// Held, never read: dropping it ends the request.
    _in_flight: InFlight,
}

impl InFlightBody {
    pub fn new(body: Body, in_flight: InFlight) -> Self {
        Self {
            body,
            _in_flight: in_flight,
        }
    }
}

impl HttpBody for InFlightBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Which deadline a connection that is not busy is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request is in flight: no deadline.
    Busy,
    /// Served, waiting for the next request: the idle deadline.
    Idle,
    /// New, or part of a request head has arrived: the header-read deadline.
    Head,
}

impl Phase {
    /// The metric label of a connection closed in this phase.
    fn reason(self) -> &'static str {
        match self {
            Phase::Idle => "idle_timeout",
            Phase::Head | Phase::Busy => "header_timeout",
        }
    }
}

/// A connection (a TCP stream, in tests a pipe) whose reads fail once the deadline of its
/// phase has passed.
pub(super) struct DeadlineIo<T> {
    stream: T,
    activity: Arc<Activity>,
    deadlines: Deadlines,
    phase: Phase,
    /// `Activity::begun` when the phase was last set, to notice requests that came and went.
    begun_seen: u64,
    /// Fires at the current phase's deadline; wakes a read waiting on a silent client.
    sleep: Pin<Box<Sleep>>,
    /// Set while a write waits for the client to make room: fires at the write deadline.
    write_stall: Option<Pin<Box<Sleep>>>,
}

impl<T> DeadlineIo<T> {
    pub fn new(stream: T, activity: Arc<Activity>, deadlines: Deadlines) -> Self {
        Self {
            stream,
            activity,
            deadlines,
            // A new connection owes us a request head: nothing has been served yet.
            phase: Phase::Head,
            begun_seen: 0,
            sleep: Box::pin(tokio::time::sleep(deadlines.header)),
            write_stall: None,
        }
    }

    /// What a write's poll means for the write deadline: progress clears it; a write left
    /// pending starts it (once) and fails when it passes.
    fn watch_write<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.write_stall = None;
            return poll;
        }
        let write = self.deadlines.write;
        let stall = self
            .write_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(write)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => {
                METRICS
                    .connections_timed_out
                    .with_label_values(&["write_timeout"])
                    .inc();
                tracing::debug!("closing a connection: the client stopped reading");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "write_timeout",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Moves to the phase the shared activity says we are in.
    fn update_phase(&mut self) {
        let begun = self.activity.begun.load(Ordering::Acquire);
        if self.activity.in_flight.load(Ordering::Acquire) > 0 {
            self.phase = Phase::Busy;
            self.begun_seen = begun;
        } else if self.phase == Phase::Busy || begun != self.begun_seen {
            self.begun_seen = begun;
            self.enter(Phase::Idle);
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        let after = match phase {
            Phase::Idle => self.deadlines.idle,
            Phase::Head | Phase::Busy => self.deadlines.header,
        };
        self.sleep.as_mut().reset(Instant::now() + after);
    }

    fn timed_out(&self) -> io::Error {
        let reason = self.phase.reason();
        METRICS
            .connections_timed_out
            .with_label_values(&[reason])
            .inc();
        tracing::debug!(reason, "closing a connection: deadline passed");
        io::Error::new(io::ErrorKind::TimedOut, reason)
    }
}

impl DeadlineIo<TcpStream> {
    /// Copies the bytes the client has sent into `buf` without consuming them, waiting for
    /// the first ones under the current deadline (`protocol::sniff`).
    pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let peeked = tokio::select! {
            biased;
            () = self.sleep.as_mut() => None,
            n = self.stream.peek(buf) => Some(n),
        };
        peeked.unwrap_or_else(|| Err(self.timed_out()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DeadlineIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.activity.reader.register(cx.waker());
        this.update_phase();
        if this.phase == Phase::Busy {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        // Checked before reading too: a client trickling a byte at a time never leaves a
        // read pending, yet must not outlive the deadline.
        if Instant::now() >= this.sleep.deadline() {
            return Poll::Ready(Err(this.timed_out()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.phase == Phase::Idle
                    && buf.filled().len() > before
                    && !this.activity.multiplexed.load(Ordering::Acquire)
                {
                    this.enter(Phase::Head);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(this.timed_out())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch_write(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.watch_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_flush(cx);
        this.watch_write(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

    const DEADLINES: Deadlines = Deadlines {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(75),
        write: Duration::from_secs(30),
    };

    fn connection() -> (DeadlineIo<DuplexStream>, DuplexStream, Arc<Activity>) {
        let (server, client) = duplex(1024);
        let activity = Arc::new(Activity::default());
        (
            DeadlineIo::new(server, activity.clone(), DEADLINES),
            client,
            activity,
        )
    }

    /// Reads until the deadline fails the read: how long it took, and the reason.
    async fn time_to_close(io: &mut DeadlineIo<DuplexStream>) -> (Duration, String) {
        let start = Instant::now();
        let mut buf = [0u8; 64];
        loop {
            match io.read(&mut buf).await {
                Ok(0) => panic!("the client closed, not the deadline"),
                Ok(_) => continue,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
                    return (start.elapsed(), e.to_string());
                }
            }
        }
    }

    fn about(took: Duration, want: Duration) -> bool {
        took >= want && took < want + Duration::from_millis(10)
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_owes_a_request_head_within_the_header_deadline() {
        let (mut io, _client, _) = connection();
        let (took, reason) = time_to_close(&mut io).await;
        assert!(about(took, DEADLINES.header), "{took:?}");
        assert_eq!(reason, "header_timeout");
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_head_is_not_saved_by_each_byte() {
        let (mut io, mut client, _) = connection();
        let start = Instant::now();
        let mut buf = [0u8; 8];
        let failed = loop {
            client.write_all(b"G").await.unwrap();
            if let Err(e) = io.read(&mut buf).await {
                break e;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        assert_eq!(failed.to_string(), "header_timeout");
        assert!(start.elapsed() <= DEADLINES.header + Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_has_no_deadline_however_quiet() {
        let (mut io, _client, activity) = connection();
        let in_flight = activity.begin();
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(3600), io.read(&mut buf)).await;
        assert!(read.is_err(), "a busy connection was closed: {read:?}");
        drop(in_flight);
        let (took, reason) = time_to_close(&mut io).await;
        assert!(about(took, DEADLINES.idle), "{took:?}");
        assert_eq!(reason, "idle_timeout");
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_request_the_idle_deadline_runs_until_the_next_first_byte() {
        let (mut io, mut client, activity) = connection();
        // A request that came and went between two reads.
        drop(activity.begin());
        tokio::time::sleep(Duration::from_secs(30)).await;
        client.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(io.read(&mut buf).await.unwrap(), 8);
        // From the first byte of the next head, the header deadline.
        let (took, reason) = time_to_close(&mut io).await;
        assert!(about(took, DEADLINES.header), "{took:?}");
        assert_eq!(reason, "header_timeout");
    }

    #[tokio::test(start_paused = true)]
    async fn frames_on_an_idle_http2_connection_do_not_keep_it_open() {
        let (mut io, mut client, activity) = connection();
        activity.multiplexed();
        drop(activity.begin());
        let start = Instant::now();
        let mut buf = [0u8; 64];
        // A PING's worth of bytes every 20 s: on HTTP/1.1 each would start a head. Bounded,
        // so a connection the frames keep open fails the test instead of hanging it.
        let mut failed = None;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(20)).await;
            client.write_all(b"ping").await.unwrap();
            if let Err(e) = io.read(&mut buf).await {
                failed = Some(e);
                break;
            }
        }
        let failed = failed.expect("the frames kept an idle connection open");
        assert_eq!(failed.to_string(), "idle_timeout");
        // The idle clock starts at the connection's first read, 20 s in; then at most one
        // more 20 s wait passes before a read sees the deadline.
        assert!(start.elapsed() <= DEADLINES.idle + Duration::from_secs(40));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_off_at_the_write_deadline() {
        // Busy (a request in flight), so no read deadline applies; only the write one.
        let (mut io, client, activity) = connection();
        let _in_flight = activity.begin();
        let start = Instant::now();
        let chunk = [b'x'; 256];
        let failed = loop {
            if let Err(e) = io.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(failed.kind(), io::ErrorKind::TimedOut);
        assert_eq!(failed.to_string(), "write_timeout");
        assert!(
            about(start.elapsed(), DEADLINES.write),
            "{:?}",
            start.elapsed()
        );
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_up_is_never_cut_off() {
        let (mut io, mut client, activity) = connection();
        let _in_flight = activity.begin();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut total = 0;
            // Reads a little every 20 s: each stall is shorter than the write deadline.
            while total < 8192 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                total += client.read(&mut buf).await.unwrap();
            }
        });
        for _ in 0..32 {
            io.write_all(&[b'y'; 256]).await.unwrap();
        }
        reader.await.unwrap();
    }
}
