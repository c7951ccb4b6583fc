//! The `mcpbus-gateway` command line: flags and environment into a [`Config`], then run.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::error::GatewayError;
use crate::Config;

#[derive(Parser, Debug)]
#[command(
    name = "mcpbus-gateway",
    version,
    about = "Stateless MCP gateway node for an mcpbus cluster"
)]
struct Cli {
    /// HTTP listen address.
    #[arg(long, env = "MCPBUS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Ask the gateway listening on --listen whether it is ready (GET /readyz) and exit 0 if
    /// it is, 1 if not: the health check of containers, whose images hold no shell or curl.
    #[arg(long)]
    probe: bool,
    // --- NATS: seed servers, credentials, TLS (issue 13) ---
    #[command(flatten)]
    nats: bus_schema::connect::NatsArgs,
    /// Allowed Host header names, comma-separated; `*` allows any (default: loopback).
    #[arg(long, env = "MCPBUS_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Option<Vec<String>>,
    /// Allowed Origin values (full origins or host names), comma-separated; `*` allows any
    /// (default: loopback).
    #[arg(long, env = "MCPBUS_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Option<Vec<String>>,
    /// Largest request body in bytes.
    #[arg(long, env = "MCPBUS_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Timeout for tools that declare none, in seconds.
    #[arg(long, env = "MCPBUS_DEFAULT_TOOL_TIMEOUT_SECS")]
    default_tool_timeout_secs: Option<u64>,
    /// Tools per tools/list page.
    #[arg(long, env = "MCPBUS_PAGE_SIZE")]
    page_size: Option<usize>,
    /// Answer tools/call with a single JSON body instead of an SSE stream.
    #[arg(long, env = "MCPBUS_JSON_TOOL_CALLS")]
    json_tool_calls: bool,
    /// Age limit of stored session events in seconds (applied when the stream is created).
    #[arg(long, env = "MCPBUS_EVENT_RETENTION_SECS")]
    event_retention_secs: Option<u64>,
    /// Age limit of broadcast events in seconds (applied when the stream is created).
    #[arg(long, env = "MCPBUS_BROADCAST_RETENTION_SECS")]
    broadcast_retention_secs: Option<u64>,
    /// SSE keep-alive comment interval in seconds.
    #[arg(long, env = "MCPBUS_SSE_KEEP_ALIVE_SECS")]
    sse_keep_alive_secs: Option<u64>,
    /// Longest worker TTL honoured, in seconds (default 8): a worker claiming more is expired
    /// this long after its last beat. Workers holding their alive subscription (ADR 0029)
    /// leave about a second after their connection dies whatever their TTL.
    #[arg(long, env = "MCPBUS_MAX_WORKER_TTL_SECS")]
    max_worker_ttl_secs: Option<u64>,
    /// Seconds in-flight requests get to finish on shutdown.
    #[arg(long, env = "MCPBUS_DRAIN_SECS")]
    drain_secs: Option<u64>,
    /// Seconds to keep serving, not-ready, after SIGTERM before closing the listener.
    #[arg(long, env = "MCPBUS_SHUTDOWN_DELAY_SECS")]
    shutdown_delay_secs: Option<u64>,
    /// JetStream replicas for streams and buckets this gateway creates.
    #[arg(long, env = "MCPBUS_JS_REPLICAS")]
    js_replicas: Option<usize>,
    /// Secrets (at least 32 bytes each) sealing MRTR requestState, comma-separated; the first
    /// seals, all open (default: one cluster key generated in the mcpbus-cluster KV bucket).
    #[arg(
        long,
        env = "MCPBUS_REQUEST_STATE_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    request_state_keys: Vec<String>,
    /// JSON authorization policy: which tools, resources, prompts and pools each principal
    /// may see and use (see docs/SECURITY.md). Re-read when it changes; default: no policy.
    #[arg(long, env = "MCPBUS_AUTH_POLICY")]
    auth_policy: Option<std::path::PathBuf>,
    /// Seconds a client has to answer an InputRequiredResult.
    #[arg(long, env = "MCPBUS_REQUEST_STATE_TTL_SECS")]
    request_state_ttl_secs: Option<u64>,
    /// Seconds a task stays readable after it was created (at most 86400).
    #[arg(long, env = "MCPBUS_TASK_TTL_SECS")]
    task_ttl_secs: Option<u64>,
    /// Standalone and listen streams this node holds at once (default 10000); more get 503.
    #[arg(long, env = "MCPBUS_MAX_OPEN_STREAMS")]
    max_open_streams: Option<usize>,
    /// Session records kept in memory (default 100000; 0: read KV on every request).
    #[arg(long, env = "MCPBUS_SESSION_CACHE_ENTRIES")]
    session_cache_entries: Option<usize>,
    /// Milliseconds a cached session record is served without news of it (default 5000).
    #[arg(long, env = "MCPBUS_SESSION_CACHE_REVALIDATE_MS")]
    session_cache_revalidate_ms: Option<u64>,

    // --- JetStream store limits (ADR 0007) ---
    #[command(flatten)]
    store: StoreArgs,

    // --- Per-client quotas (ADR 0012) ---
    #[command(flatten)]
    quotas: crate::quota::QuotaArgs,

    // --- Connection bounds (issue 12, slowloris). ---
    /// Seconds a client has to send a complete request head, from its first byte.
    #[arg(long, env = "MCPBUS_HEADER_READ_TIMEOUT_SECS")]
    header_read_timeout_secs: Option<u64>,
    /// Seconds a keep-alive connection with no request in flight may stay silent (open SSE
    /// streams are in flight and are not cut).
    #[arg(long, env = "MCPBUS_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// Seconds a response write may wait for a client that stopped reading; then the
    /// connection is closed (a session stream resumes with Last-Event-ID).
    #[arg(long, env = "MCPBUS_WRITE_TIMEOUT_SECS")]
    write_timeout_secs: Option<u64>,
    /// Open HTTP connections per node at most; more get 503 and are closed.
    #[arg(long, env = "MCPBUS_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Largest request head in bytes (at least 8192); larger gets 431.
    #[arg(long, env = "MCPBUS_MAX_HEADER_BYTES")]
    max_header_bytes: Option<usize>,
    /// Concurrent requests (streams) per HTTP/2 connection; more are refused (REFUSED_STREAM).
    #[arg(long, env = "MCPBUS_HTTP2_MAX_STREAMS")]
    http2_max_streams: Option<u32>,

    // --- OAuth resource server and metrics (ADR 0009) ---
    #[command(flatten)]
    auth: crate::auth::AuthArgs,
    /// Address of the separate /metrics listener (`off` serves none).
    #[arg(long, env = "MCPBUS_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    metrics_listen: String,

    // --- Logs and traces (ADR 0020); traces are configured by the OTEL_* variables ---
    /// Log line format: json, text, or auto (text on a terminal, JSON otherwise).
    #[arg(long, env = "MCPBUS_LOG_FORMAT", default_value = "auto")]
    log_format: mcpbus_telemetry::LogFormat,
}

impl Cli {
    fn into_config(self) -> Result<Config, String> {
        let mut c = Config {
            listen: self.listen,
            // Under NATS permissions a gateway may read only its role's inboxes (ADR 0013).
            nats: self
                .nats
                .into_options()
                .map_err(|e| e.to_string())?
                .with_inbox_prefix(bus_schema::subjects::GATEWAY_INBOX_PREFIX),
            sse_tool_calls: !self.json_tool_calls,
            request_state_keys: self.request_state_keys,
            auth_policy: self.auth_policy,
            ..Config::default()
        };
        if let Some(v) = self.allowed_hosts {
            c.allowed_hosts = v;
        }
        if let Some(v) = self.allowed_origins {
            c.allowed_origins = v;
        }
        if let Some(v) = self.max_body_bytes {
            c.max_body_bytes = v;
        }
        if let Some(v) = self.default_tool_timeout_secs {
            c.default_tool_timeout = Duration::from_secs(v);
        }
        if let Some(v) = self.page_size {
            c.page_size = v.max(1);
        }
        if let Some(v) = self.event_retention_secs {
            c.event_retention = Duration::from_secs(v.max(1));
        }
        if let Some(v) = self.broadcast_retention_secs {
            c.broadcast_retention = Duration::from_secs(v.max(1));
        }
        if let Some(v) = self.sse_keep_alive_secs {
            c.sse_keep_alive = Duration::from_secs(v.max(1));
        }
        if let Some(v) = self.drain_secs {
            c.drain_timeout = Duration::from_secs(v);
        }
        if let Some(v) = self.max_worker_ttl_secs {
            c.max_worker_ttl = Duration::from_secs(v.clamp(1, 3600));
        }
        if let Some(v) = self.shutdown_delay_secs {
            c.shutdown_delay = Duration::from_secs(v);
        }
        if let Some(v) = self.request_state_ttl_secs {
            c.request_state_ttl = Duration::from_secs(v.max(1));
        }
        if let Some(v) = self.task_ttl_secs {
            c.task_ttl = Duration::from_secs(v.clamp(1, 86_400));
        }
        if let Some(v) = self.max_open_streams {
            c.max_open_streams = v.max(1);
        }
        if let Some(v) = self.session_cache_entries {
            c.session_cache_entries = v;
        }
        if let Some(v) = self.session_cache_revalidate_ms {
            c.session_cache_revalidate = Duration::from_millis(v);
        }
        if let Some(v) = self.js_replicas {
            c.js_replicas = v.max(1);
        }
        // --- JetStream store limits (ADR 0007) ---
        c.store_limits = self.store.into_limits(c.store_limits);
        c.quotas = self.quotas.into_config(c.quotas);

        // Connection bounds.
        if let Some(v) = self.header_read_timeout_secs {
            c.header_read_timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = self.idle_timeout_secs {
            c.idle_timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = self.write_timeout_secs {
            c.write_timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = self.max_connections {
            c.max_connections = v.max(1);
        }
        if let Some(v) = self.max_header_bytes {
            c.max_header_bytes = v.max(crate::connection::MIN_HEADER_BYTES);
        }
        if let Some(v) = self.http2_max_streams {
            c.http2_max_streams = v.max(1);
        }

        // OAuth resource server and metrics (ADR 0009).
        c.auth = self.auth.into_config().map_err(|e| e.to_string())?;
        c.metrics_listen = match self.metrics_listen.as_str() {
            "off" => None,
            addr => Some(addr.parse().map_err(|_| {
                format!("--metrics-listen {addr:?} is not an address (e.g. 127.0.0.1:9464) or off")
            })?),
        };
        Ok(c)
    }
}

// --- JetStream store limits (ADR 0007) ---

/// Size limits of the JetStream stores a client can fill, in bytes. Applied at start to new
/// and existing streams (an existing stream holding more than a lower `max-bytes` keeps its
/// old byte limit, with a warning). A message size above the store's size is capped to it.
#[derive(clap::Args, Debug)]
struct StoreArgs {
    /// Bytes the calls work queue may hold [default: 1 GiB].
    #[arg(long, env = "MCPBUS_STORE_CALLS_MAX_BYTES", value_parser = clap::value_parser!(i64).range(1..))]
    store_calls_max_bytes: Option<i64>,
    /// Largest queued call in bytes [default: 1 MiB].
    #[arg(long, env = "MCPBUS_STORE_CALLS_MAX_MSG_BYTES", value_parser = clap::value_parser!(i32).range(1..))]
    store_calls_max_msg_bytes: Option<i32>,
    /// Bytes of stored session events; the oldest go first [default: 1 GiB].
    #[arg(long, env = "MCPBUS_STORE_EVENTS_MAX_BYTES", value_parser = clap::value_parser!(i64).range(1..))]
    store_events_max_bytes: Option<i64>,
    /// Largest session event in bytes [default: 1 MiB].
    #[arg(long, env = "MCPBUS_STORE_EVENTS_MAX_MSG_BYTES", value_parser = clap::value_parser!(i32).range(1..))]
    store_events_max_msg_bytes: Option<i32>,
    /// Bytes of the sessions bucket; full refuses initialize [default: 1 GiB].
    #[arg(long, env = "MCPBUS_STORE_SESSIONS_MAX_BYTES", value_parser = clap::value_parser!(i64).range(1..))]
    store_sessions_max_bytes: Option<i64>,
    /// Largest session record in bytes [default: 256 KiB].
    #[arg(long, env = "MCPBUS_STORE_SESSIONS_MAX_MSG_BYTES", value_parser = clap::value_parser!(i32).range(1..))]
    store_sessions_max_msg_bytes: Option<i32>,
    /// Bytes of the tasks bucket; full refuses new tasks [default: 256 MiB].
    #[arg(long, env = "MCPBUS_STORE_TASKS_MAX_BYTES", value_parser = clap::value_parser!(i64).range(1..))]
    store_tasks_max_bytes: Option<i64>,
    /// Largest task record in bytes [default: 64 KiB].
    #[arg(long, env = "MCPBUS_STORE_TASKS_MAX_MSG_BYTES", value_parser = clap::value_parser!(i32).range(1..))]
    store_tasks_max_msg_bytes: Option<i32>,
}

impl StoreArgs {
    fn into_limits(
        self,
        d: crate::store_limits::StoreLimitsConfig,
    ) -> crate::store_limits::StoreLimitsConfig {
        use bus_schema::limits::StoreLimits;
        let pick = |bytes: Option<i64>, msg: Option<i32>, d: StoreLimits| {
            StoreLimits::new(bytes.unwrap_or(d.max_bytes), msg.unwrap_or(d.max_msg_size))
        };
        crate::store_limits::StoreLimitsConfig {
            calls: pick(
                self.store_calls_max_bytes,
                self.store_calls_max_msg_bytes,
                d.calls,
            ),
            events: pick(
                self.store_events_max_bytes,
                self.store_events_max_msg_bytes,
                d.events,
            ),
            sessions: pick(
                self.store_sessions_max_bytes,
                self.store_sessions_max_msg_bytes,
                d.sessions,
            ),
            tasks: pick(
                self.store_tasks_max_bytes,
                self.store_tasks_max_msg_bytes,
                d.tasks,
            ),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.probe {
        return match crate::probe::ready(cli.listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mcpbus-gateway: not ready: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let log_format = cli.log_format;
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("mcpbus-gateway: error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match mcpbus_telemetry::init("mcpbus-gateway", log_format) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mcpbus-gateway: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = bus_schema::process::run_main("mcpbus-gateway", start(config));
    // Flushes the spans not yet exported.
    drop(telemetry);
    code
}

async fn start(config: Config) -> Result<(), GatewayError> {
    // Before binding: an unprotected gateway must not even listen beyond loopback.
    config.auth.check_listen(config.listen)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| GatewayError::Listen {
            addr: config.listen,
            source,
        })?;
    crate::run(config, listener, bus_schema::process::shutdown_signal()).await
}
