//! Which HTTP versions a connection may speak, and what HTTP/2 lets one client hold (ADR 0028).
//!
//! HTTP/1.1 and HTTP/2 in cleartext (h2c with prior knowledge) are served on the same port:
//! a connection whose first bytes are HTTP/2's connection preface speaks HTTP/2, any other
//! HTTP/1.1. The gateway terminates no TLS itself (a proxy in front does), so there is no
//! ALPN to negotiate here: a TLS ingress that speaks HTTP/2 to its upstreams uses h2c.
//! `Upgrade: h2c` from HTTP/1.1 is not offered (RFC 9113 deprecated it).
//!
//! The preface is peeked at, not read, and the connection then goes to hyper's own HTTP/1
//! or HTTP/2 server. hyper-util's auto server, which did this before, reads the first bytes
//! and hands hyper an IO that replays them: hyper's first read then gets those few bytes
//! alone, and every idle HTTP/1.1 connection held ~8 KB more (docs/PERFORMANCE.md, issue
//! 18, P2).
//!
//! Why HTTP/2: behind an ingress, many clients' SSE streams share a few upstream
//! connections, so hyper's per-connection buffers (16 KiB on HTTP/1.1) are paid once per
//! connection, not once per stream (docs/PERFORMANCE.md, issue 18).

use std::io;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::TcpStream;

use super::deadline::DeadlineIo;
use super::{Limits, MIN_HEADER_BYTES};

/// Receive window of one HTTP/2 stream: request bytes the client may send before the
/// handler reads them. hyper's default (1 MiB) times 256 streams would let one connection
/// park far more than any request body cap; 64 KiB keeps loopback and LAN uploads at full
/// speed (a window per round trip).
pub const STREAM_WINDOW: u32 = 64 * 1024;
/// Receive window of one HTTP/2 connection, shared by its streams: the most request data a
/// connection holds unread, whatever its streams do.
pub const CONNECTION_WINDOW: u32 = 256 * 1024;
/// Response bytes buffered per stream before hyper stops polling its body. SSE frames are
/// small; hyper's default is 400 KiB per stream.
pub const SEND_BUFFER: usize = 64 * 1024;
/// Streams a client may reset before the handler has seen them, at once. Past this the
/// connection is closed with `ENHANCE_YOUR_CALM`: the "rapid reset" attack (CVE-2023-44487)
/// makes a server start work for requests the client cancels at once. hyper's default, said
/// here so it cannot silently change.
pub const PENDING_RESETS: usize = 20;
/// Streams the server may reset for protocol errors before closing the connection
/// (a client that keeps provoking errors). hyper's default is 1024.
pub const ERROR_RESETS: usize = 256;

/// What every HTTP/2 connection opens with (RFC 9113, section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The longest pause between two looks at a preface that arrived in parts.
const MAX_PEEK_PAUSE: Duration = Duration::from_millis(100);

/// The HTTP version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    Http1,
    Http2,
}

/// The two servers a connection can be handed to, shared by every connection.
pub struct Servers {
    /// HTTP/1.1 with the head cap.
    pub http1: http1::Builder,
    /// HTTP/2 with the caps above.
    pub http2: http2::Builder<TokioExecutor>,
}

impl Servers {
    pub fn new(limits: &Limits) -> Self {
        let head = limits.max_header_bytes.max(MIN_HEADER_BYTES);
        let mut http1 = http1::Builder::new();
        // No timer on HTTP/1: hyper's own header-read timeout would also cut idle keep-alive
        // connections; `deadline.rs` enforces both deadlines instead. The head cap is checked
        // on the head itself (431), not only on how far the read buffer grew: a 40 KB head
        // arriving at once fit in the buffer's growth steps and was served.
        http1.max_buf_size(head).max_header_size(head);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.http2_max_streams)
            .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX))
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_send_buf_size(SEND_BUFFER)
            .max_pending_accept_reset_streams(PENDING_RESETS)
            .max_local_error_reset_streams(ERROR_RESETS);
        Self { http1, http2 }
    }
}

/// Waits for a connection's first bytes, under its header-read deadline, and tells which
/// version it speaks, leaving the bytes for hyper to read.
pub async fn sniff(io: &mut DeadlineIo<TcpStream>) -> io::Result<Speaks> {
    let mut first = [0u8; PREFACE.len()];
    let mut pause = Duration::from_millis(1);
    loop {
        let n = io.peek(&mut first).await?;
        if let Some(speaks) = classify(&first[..n]) {
            return Ok(speaks);
        }
        // The start of a preface, the rest still to come. Clients write it whole, so this is
        // rare; peeking again at once would find the same bytes and spin. The header-read
        // deadline bounds the wait.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PEEK_PAUSE);
    }
}

/// The version that `first`, a connection's first bytes, show; `None` while they are a
/// proper start of HTTP/2's preface. No bytes at all (the client closed) go to HTTP/1,
/// which reports the closed connection.
fn classify(first: &[u8]) -> Option<Speaks> {
    if first.is_empty() || !PREFACE.starts_with(first) {
        Some(Speaks::Http1)
    } else if first.len() == PREFACE.len() {
        Some(Speaks::Http2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::super::deadline::{Activity, Deadlines};
    use super::*;

    /// A loopback connection as the server holds it, with a short header deadline.
    async fn accepted() -> (DeadlineIo<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let deadlines = Deadlines {
            header: Duration::from_millis(200),
            idle: Duration::from_secs(75),
            write: Duration::from_secs(30),
        };
        let io = DeadlineIo::new(server, Arc::new(Activity::default()), deadlines);
        (io, client)
    }

    #[tokio::test]
    async fn a_preface_written_in_two_parts_is_waited_for() {
        let (mut io, mut client) = accepted().await;
        client.write_all(&PREFACE[..16]).await.unwrap();
        let sniffing = tokio::spawn(async move { sniff(&mut io).await.unwrap() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(&PREFACE[16..]).await.unwrap();
        assert_eq!(sniffing.await.unwrap(), Speaks::Http2);
    }

    #[tokio::test]
    async fn a_request_line_is_http1_and_stays_unread() {
        let (mut io, mut client) = accepted().await;
        client
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        assert_eq!(sniff(&mut io).await.unwrap(), Speaks::Http1);
        // hyper still reads the request from its first byte.
        let mut first = [0u8; 3];
        assert_eq!(io.peek(&mut first).await.unwrap(), 3);
        assert_eq!(&first, b"GET");
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_at_the_header_deadline() {
        let (mut io, _client) = accepted().await;
        let e = sniff(&mut io).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_client_stalled_inside_the_preface_is_closed_at_the_header_deadline() {
        let (mut io, mut client) = accepted().await;
        client.write_all(b"PRI * HTTP/2.0").await.unwrap();
        let e = sniff(&mut io).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn the_preface_is_http2_and_anything_else_http1() {
        assert_eq!(classify(PREFACE), Some(Speaks::Http2));
        assert_eq!(classify(b"GET /mcp HTTP/1.1\r\n"), Some(Speaks::Http1));
        // Shares the preface's first letter only.
        assert_eq!(classify(b"POST /mcp HTTP/1.1\r\n"), Some(Speaks::Http1));
        assert_eq!(classify(b""), Some(Speaks::Http1));
    }

    #[test]
    fn a_preface_that_has_not_fully_arrived_is_undecided() {
        assert_eq!(classify(b"P"), None);
        assert_eq!(classify(&PREFACE[..16]), None);
        assert_eq!(classify(&PREFACE[..PREFACE.len() - 1]), None);
    }
}
