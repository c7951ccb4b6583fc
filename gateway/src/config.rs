//! Gateway configuration, parsed once (see `cli.rs`) and passed down read-only.

use std::net::SocketAddr;
use std::time::Duration;

/// Every setting with its default and the reason for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Address of the HTTP listener. Default `127.0.0.1:8080`: loopback unless deployed, so a
    /// development gateway is never reachable from the network by accident.
    pub listen: SocketAddr,
    /// How to reach NATS: seed servers, credentials, TLS (`bus_schema::connect`). Default a
    /// local server without credentials. Its `Debug` shows no secret.
    pub nats: bus_schema::connect::NatsOptions,
    /// `Host` header values accepted (host part, any port). Default loopback names only:
    /// together with the Origin check this defeats DNS rebinding. `*` accepts any host.
    pub allowed_hosts: Vec<String>,
    /// `Origin` header values accepted (scheme://host[:port], or a host name for any scheme
    /// and port). Default loopback only. A request without `Origin` (not from a browser) is
    /// always accepted. `*` accepts any origin.
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body. Default 4 MiB: generous for tool arguments, small
    /// enough that a flood of large bodies cannot exhaust memory. Larger gets 413.
    pub max_body_bytes: usize,
    /// How long reading a request body may take. Default 30 s: slow clients are fine, a
    /// client trickling bytes to hold connections open is not. Slower gets 408.
    pub body_read_timeout: Duration,
    /// Deepest JSON nesting accepted. Default 64: deep nesting is an attack on recursive
    /// parsers, not a real MCP message.
    pub max_json_depth: usize,
    /// How long a tool call may run when its tool declares no timeout. Default 5 minutes:
    /// long enough for real work (no hidden 30 s limit), and every tool may declare its own.
    pub default_tool_timeout: Duration,
    /// Tools per `tools/list` page. Default 100.
    pub page_size: usize,
    /// `ttlMs` on cacheable stateless-lane results. Default 60 s.
    pub list_ttl: Duration,
    /// Upper bound on the liveness TTL a worker may claim, so a dead worker always leaves the
    /// catalogue in bounded time. Default 8 s (plus a 1 s sweep: gone within 9 s).
    pub max_worker_ttl: Duration,
    /// Answer `tools/call` as an SSE stream (progress, then the result) rather than a single
    /// JSON body. Default true: streams carry progress and survive long calls behind proxies.
    pub sse_tool_calls: bool,
    /// SSE comment keep-alive interval on open streams. Default 15 s, below the 30-60 s idle
    /// timeouts common in load balancers.
    pub sse_keep_alive: Duration,
    /// Age limit of broadcast events (list_changed, resource updates), applied when this
    /// gateway creates the broadcast stream: how long a standalone stream can be away and
    /// still replay what it missed. Default 24 h.
    pub broadcast_retention: Duration,
    /// How long in-flight requests get to finish once shutdown starts. Default 10 s. Open
    /// SSE streams do not wait for it: they are handed to other nodes with `retry:` at once.
    pub drain_timeout: Duration,
    /// How long a stopping gateway keeps accepting connections while reporting not-ready,
    /// so that load balancers stop routing to it first. Default 0 (Kubernetes: a few seconds).
    pub shutdown_delay: Duration,
    /// Age limit of stored session events, applied when this gateway creates the events
    /// stream: how long a client may be away and still resume. Default 1 h.
    pub event_retention: Duration,
    /// JetStream replicas for streams and buckets this gateway creates. Default 1; use 3 on
    /// a clustered NATS.
    pub js_replicas: usize,
    /// Secrets that seal MRTR `requestState` (2026-07-28), in rotation order: the first
    /// seals, all open. Default none: the cluster then shares one generated key through the
    /// `mcpbus-cluster` KV bucket. Set them (from a Secret) to rotate: add the new key first,
    /// drop the old one once `request_state_ttl` has passed.
    pub request_state_keys: Vec<String>,
    /// The authorization policy file (ADR 0011). Default none: every principal that gets in
    /// sees and uses everything.
    pub auth_policy: Option<std::path::PathBuf>,
    /// How long a client may take to answer an `InputRequiredResult`. Default 1 h: people
    /// answer elicitations at their own pace, and the spec asks for an expiry.
    pub request_state_ttl: Duration,
    /// How long a task stays readable after it was created (`ttlMs`). Default 1 h; at most
    /// the tasks bucket's age limit (24 h) and, for its result, the event retention.
    pub task_ttl: Duration,
    /// Standalone `GET` and `subscriptions/listen` streams this node holds at once (each
    /// costs ~25 KB, see docs/PERFORMANCE.md). Default 10 000: ~250 MB, inside a 512 MiB
    /// pod with room for calls. More get 503 with `Retry-After`, so the client goes to
    /// another node. Cluster-wide, the limit is this times the number of gateways.
    pub max_open_streams: usize,
    /// Session records this node keeps in memory so that a request on a known session reads
    /// no KV (ADR 0025). Default 100 000 (and at most 64 MiB of records); past it new
    /// sessions are read from KV per request. 0 turns the cache off.
    pub session_cache_entries: usize,
    /// How long a cached session record is served without news of it. Default 5 s. A change
    /// or delete on another node arrives by the sessions watch in well under that; this bounds
    /// how long a watch that stalled without an error could leave a record stale.
    pub session_cache_revalidate: Duration,

    // --- JetStream store limits (ADR 0007) ---
    /// Byte and message size limits of the streams and buckets a client can fill (calls,
    /// events, sessions, tasks), applied at start to new and existing stores. Defaults in
    /// `bus_schema::limits`: no client can fill the JetStream store, and a full store refuses
    /// with a clear error instead of failing every client.
    pub store_limits: crate::store_limits::StoreLimitsConfig,

    /// Per-client quotas (ADR 0012): request rate, sessions per minute, calls and listen
    /// streams in flight.
    pub quotas: crate::quota::QuotaConfig,

    // --- Connection bounds (issue 12, slowloris): see `connection/`. ---
    /// How long a client has to send a complete request head, from its first byte (or from
    /// connecting). Default 10 s: a head is a few hundred bytes, which any real client sends
    /// in one packet; a client that trickles it is holding a file descriptor hostage.
    pub header_read_timeout: Duration,
    /// How long a connection with no request in flight may stay open without sending a byte.
    /// Default 75 s: longer than the 60 s idle timeout of common load balancers, so that they,
    /// not we, close the connections they pool (no request races a close); as nginx's
    /// `keepalive_timeout`. Open SSE streams are requests in flight and are never cut by it.
    pub idle_timeout: Duration,
    /// How long a write to a client may wait for the client to read (an SSE stream it
    /// stopped reading). Default 30 s: far longer than any network hiccup, and the bound on
    /// how long a stalled stream holds its buffers. A cut-off session stream resumes with
    /// `Last-Event-ID`.
    pub write_timeout: Duration,
    /// Open HTTP connections per node at most; more are answered 503 and closed at once.
    /// Default 12 000: above `max_open_streams` (10 000), so that a node holding every stream
    /// it may still takes calls and refuses further streams with its clear 503; an idle
    /// connection costs a few KB, far less than a stream. Cluster-wide: this times the
    /// number of gateways. Keep it below `ulimit -n` outside containers (often 1024).
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes; larger gets 431. Default
    /// 32 KiB: what nginx (4 × 8 KB) and most proxies in front pass, ample for `Mcp-Param-*`
    /// headers, and it bounds what a half-sent head holds: `max_connections` × this at worst
    /// (hyper's own default, ~400 KB, made that ~5 GB).
    pub max_header_bytes: usize,
    /// Concurrent requests (streams) one HTTP/2 connection may hold; more are refused with
    /// `REFUSED_STREAM` and the client retries them on another connection. Default 256: an
    /// ingress that multiplexes many clients' SSE streams over a few connections needs many
    /// per connection (each is an open request for as long as the stream lives), and the
    /// node-wide `max_open_streams` and per-client quotas still bound the streams themselves.
    pub http2_max_streams: u32,

    // --- OAuth resource server and metrics (ADR 0009) ---
    /// Whether `/mcp` needs an access token. Default unset: allowed on a loopback `listen`
    /// only, so a gateway reachable from the network never serves tools to anyone by
    /// accident (`--auth none` says so on purpose).
    pub auth: crate::auth::AuthConfig,
    /// Where `/metrics` is served, apart from `/mcp`. Default `127.0.0.1:9464`: metrics name
    /// tools and load, which is nobody's business outside the node unless the operator opens
    /// it (the chart binds it for Prometheus). `None` serves no metrics.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            nats: bus_schema::connect::NatsOptions::default(),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            allowed_origins: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            max_body_bytes: 4 * 1024 * 1024,
            body_read_timeout: Duration::from_secs(30),
            max_json_depth: 64,
            default_tool_timeout: Duration::from_secs(300),
            page_size: 100,
            list_ttl: Duration::from_secs(60),
            max_worker_ttl: Duration::from_secs(8),
            sse_tool_calls: true,
            sse_keep_alive: Duration::from_secs(15),
            broadcast_retention: bus_schema::topology::BROADCAST_DEFAULT_MAX_AGE,
            drain_timeout: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
            event_retention: Duration::from_secs(3600),
            js_replicas: 1,
            request_state_keys: Vec::new(),
            auth_policy: None,
            request_state_ttl: Duration::from_secs(3600),
            task_ttl: Duration::from_secs(3600),
            max_open_streams: 10_000,
            session_cache_entries: 100_000,
            session_cache_revalidate: Duration::from_secs(5),

            // --- JetStream store limits (ADR 0007) ---
            store_limits: crate::store_limits::StoreLimitsConfig::default(),
            quotas: crate::quota::QuotaConfig::default(),

            // Connection bounds.
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            write_timeout: Duration::from_secs(30),
            max_connections: 12_000,
            max_header_bytes: 32 * 1024,
            http2_max_streams: 256,

            // OAuth resource server and metrics (ADR 0009).
            auth: crate::auth::AuthConfig::default(),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
        }
    }
}
