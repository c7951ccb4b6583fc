//! Accepting and serving HTTP connections, bounded: a cap on open connections per node, a
//! header-read deadline and an idle keep-alive deadline on each, and graceful shutdown.
//!
//! `axum::serve` runs hyper without any of these, so one client with half-sent headers, or
//! with keep-alive connections it never uses, held a file descriptor each for ever. Here every
//! connection is served by hyper directly (HTTP/1.1, or HTTP/2 in cleartext: `protocol.rs`),
//! over an IO wrapper that enforces the deadlines (`deadline.rs`). This module knows sockets
//! and hyper, nothing of MCP.

mod deadline;
mod protocol;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, HeaderValue, Version};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::METRICS;
use deadline::{Activity, DeadlineIo, Deadlines, InFlightBody};
use protocol::{Servers, Speaks};

/// What bounds a connection; copied from `Config` (see there for defaults and reasons).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time from a connection's first byte (or its opening) to a complete request head.
    pub header_read_timeout: Duration,
    /// Time a connection with no request in flight may sit without sending a byte.
    pub idle_timeout: Duration,
    /// Time a write may wait for the client to make room (it stopped reading).
    pub write_timeout: Duration,
    /// Open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// Largest request head; hyper answers a larger one with 431 and closes. hyper checks
    /// it on partial heads too, so it also bounds what a half-sent head holds (hyper's read
    /// buffer alone would grow to ~400 KB). On HTTP/2, the largest header list.
    pub max_header_bytes: usize,
    /// Concurrent requests (streams) on one HTTP/2 connection.
    pub http2_max_streams: u32,
}

/// The smallest head limit accepted: ordinary clients' heads (cookies, tokens) fit below.
pub const MIN_HEADER_BYTES: usize = 8192;

/// Serves `router` on `listener` until `draining` fires, then stops accepting, asks every
/// connection to finish its in-flight requests (HTTP/1 keep-alive off) and returns once all
/// are closed: what `axum::serve(..).with_graceful_shutdown(..)` did, with the bounds added.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    draining: CancellationToken,
) -> io::Result<()> {
    // One permit per open connection, held by its task: the cap is a count, not a queue,
    // so a connection over it is refused at once instead of waiting in the accept backlog.
    let permits = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let servers = Arc::new(Servers::new(&limits));
    let deadlines = Deadlines {
        header: limits.header_read_timeout,
        idle: limits.idle_timeout,
        write: limits.write_timeout,
    };
    let connections = TaskTracker::new();
    let refusals = RefusalLog::default();
    loop {
        let (stream, peer) = tokio::select! {
            _ = draining.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream, peer, limits.max_connections, &refusals);
            continue;
        };
        // An SSE answer is written in parts (the priming event, then the result): with
        // Nagle's algorithm the second part waits for the client's delayed ACK, ~40 ms on
        // Linux (issue 18: session-lane calls at one connection took 44 ms at p50).
        let _ = stream.set_nodelay(true);
        connections.spawn(serve_connection(
            servers.clone(),
            stream,
            peer,
            router.clone(),
            deadlines,
            draining.clone(),
            permit,
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Serves one connection until the client closes it, a deadline passes, or it finishes
/// gracefully after `draining` fired.
async fn serve_connection(
    servers: Arc<Servers>,
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    deadlines: Deadlines,
    draining: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let _open = OpenConnection::new();
    let activity = Arc::new(Activity::default());
    let mut io = DeadlineIo::new(stream, activity.clone(), deadlines);
    let sniffed = tokio::select! {
        sniffed = protocol::sniff(&mut io) => sniffed,
        // Nothing sent yet, so nothing to finish.
        _ = draining.cancelled() => return,
    };
    let speaks = match sniffed {
        Ok(speaks) => speaks,
        Err(e) => {
            tracing::trace!(error = %e, "connection ended before its first bytes");
            return;
        }
    };
    let io = TokioIo::new(io);
    let router = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        // Who is connected, for per-client quotas (`quota::ClientKey`).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        if req.version() == Version::HTTP_2 {
            activity.multiplexed();
            host_from_authority(&mut req);
        }
        // Counted before the handler runs and until hyper drops the response body, so an
        // open SSE stream keeps its connection busy (never idle) however quiet it is.
        let in_flight = activity.begin();
        let call = hyper::service::Service::call(&router, req);
        async move {
            let response = call.await?;
            Ok::<_, Infallible>(response.map(|body| Body::new(InFlightBody::new(body, in_flight))))
        }
    });
    // Each version's connection in a box of its own: the task then holds a pointer, and an
    // HTTP/1.1 connection does not pay for the size of an HTTP/2 one.
    let result = match speaks {
        Speaks::Http1 => {
            let conn = servers.http1.serve_connection(io, service);
            until_drained(Box::pin(conn), &draining, |c| c.graceful_shutdown()).await
        }
        Speaks::Http2 => {
            let conn = servers.http2.serve_connection(io, service);
            until_drained(Box::pin(conn), &draining, |c| c.graceful_shutdown()).await
        }
    };
    if let Err(e) = result {
        tracing::trace!(error = %e, "connection ended with an error");
    }
}

/// Drives `conn` to its end; once `draining` fires, asks it to finish gracefully first.
async fn until_drained<C: Future<Output = hyper::Result<()>>>(
    mut conn: Pin<Box<C>>,
    draining: &CancellationToken,
    graceful_shutdown: fn(Pin<&mut C>),
) -> hyper::Result<()> {
    tokio::select! {
        r = conn.as_mut() => r,
        _ = draining.cancelled() => {
            graceful_shutdown(conn.as_mut());
            conn.await
        }
    }
}

/// HTTP/2 carries the host in the `:authority` pseudo-header, which hyper puts in the URI,
/// and no `Host` header. The DNS-rebinding check (`http/guard.rs`) reads `Host`, so it is set
/// from the authority, as RFC 9113 (section 8.3.1) asks of anything that turns an HTTP/2
/// request into an HTTP/1.1 one. A `Host` the client sent itself is left alone.
fn host_from_authority<B>(req: &mut hyper::Request<B>) {
    if req.headers().contains_key(header::HOST) {
        return;
    }
    let host = req
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    if let Some(host) = host {
        req.headers_mut().insert(header::HOST, host);
    }
}

/// Answers a connection over the cap with 503 (best effort, never waiting on the client)
/// and closes it.
fn refuse(stream: TcpStream, peer: SocketAddr, cap: usize, log: &RefusalLog) {
    METRICS
        .refused
        .with_label_values(&["max_connections"])
        .inc();
    if log.due() {
        tracing::warn!(%peer, max_connections = cap, "connection refused: at the connection cap (logged at most once a second)");
    }
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n",
    );
}

/// Rate-limits the refusal log line: under a flood, one line a second says enough.
#[derive(Default)]
struct RefusalLog {
    /// Unix second of the last line written.
    last: AtomicU64,
}

impl RefusalLog {
    fn due(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last.swap(now, Ordering::Relaxed) != now
    }
}

/// Accept errors: a connection that died before we took it is nothing; anything else (out
/// of file descriptors, say) is logged and accepting pauses for a second, as hyper 0.14 and
/// axum::serve did, instead of spinning.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing for 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Counts a connection as open for as long as it lives.
struct OpenConnection;

impl OpenConnection {
    fn new() -> Self {
        METRICS.open_connections.inc();
        Self
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        METRICS.open_connections.dec();
    }
}
