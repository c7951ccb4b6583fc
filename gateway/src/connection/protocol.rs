//! Which HTTP versions a connection may speak, and what HTTP/2 lets one client hold (ADR 0028).
//!
//! HTTP/1.1 and HTTP/2 in cleartext (h2c with prior knowledge) are served on the same port:
//! hyper-util's auto server reads the first bytes of a connection and picks HTTP/2 when they
//! are its connection preface. The gateway terminates no TLS itself (a proxy in front does),
//! so there is no ALPN to negotiate here: a TLS ingress that speaks HTTP/2 to its upstreams
//! uses h2c. `Upgrade: h2c` from HTTP/1.1 is not offered (RFC 9113 deprecated it).
//!
//! Why HTTP/2: behind an ingress, many clients' SSE streams share a few upstream
//! connections, so hyper's per-connection buffers (16 KiB on HTTP/1.1) are paid once per
//! connection, not once per stream (docs/PERFORMANCE.md, issue 18).

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

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

/// The connection builder: HTTP/1.1 with the head cap, HTTP/2 with the caps above.
pub fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let head = limits.max_header_bytes.max(MIN_HEADER_BYTES);
    // No timer on HTTP/1: hyper's own header-read timeout would also cut idle keep-alive
    // connections; `deadline.rs` enforces both deadlines instead.
    builder.http1().max_buf_size(head.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX))
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buf_size(SEND_BUFFER)
        .max_pending_accept_reset_streams(PENDING_RESETS)
        .max_local_error_reset_streams(ERROR_RESETS);
    builder
}
