//! Prometheus metrics, served on `/metrics` of the metrics listener (`--metrics-listen`).
//! Every name is listed, with what it answers, in `docs/adr/0022-metrics.md`; the chart's
//! dashboard and alerts use them (`deploy/helm/mcpbus/ci/metric-names.txt`).
//!
//! Cardinality is bounded: label values come from small fixed sets (lanes, known MCP methods,
//! outcome names) or from the catalogue, capped by [`calls::LabelSets`]; no client input
//! becomes a label.

mod calls;
mod nats;
mod pools;

use std::sync::LazyLock;

use bus_schema::mcp::Method;
use bus_schema::messages::Lane;
use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub use calls::{CallMeter, Outcome, OTHER_TOOL};
pub use nats::watch_connection;
pub use pools::{watch_pools, PoolWorkers};

pub struct Metrics {
    registry: Registry,
    /// JSON-RPC requests by lane and method.
    pub requests: IntCounterVec,
    /// Finished tool calls by pool, tool and [`Outcome`].
    pub tool_calls: IntCounterVec,
    /// Queued until a worker accepted it, by pool and tool.
    pub call_queue_seconds: HistogramVec,
    /// Accepted until the final reply, by pool and tool.
    pub call_run_seconds: HistogramVec,
    /// The whole call as this gateway saw it, by pool and tool.
    pub call_seconds: HistogramVec,
    /// Calls waiting in each pool's queue, and delivered but not yet acknowledged.
    pub pool_queue_depth: IntGaugeVec,
    pub pool_ack_pending: IntGaugeVec,
    /// Live worker instances per pool (0 once a pool's last worker left).
    pub pool_workers: IntGaugeVec,
    /// Open SSE streams by kind: `request`, `standalone`, `listen`.
    pub open_streams: IntGaugeVec,
    /// Streams resumed with `Last-Event-ID`, by kind: `request`, `standalone`.
    pub stream_resumes: IntCounterVec,
    /// Events sent again on a resumed stream, by kind.
    pub replayed_events: IntCounterVec,
    /// Resumes refused because the events were gone (410).
    pub events_expired: IntCounter,
    /// Session-lane lookups of the session record by what answered (ADR 0025): `hit` and
    /// `gone` from the cache, `miss` and `bypass` (no trusted watch) from KV, `full` when a
    /// record could not be held for the cache's cap.
    pub session_cache: IntCounterVec,
    /// Broadcasts this gateway stored, and the events it wrote to client streams, by kind
    /// (`BroadcastKind::subject_token`).
    pub broadcasts_published: IntCounterVec,
    pub broadcast_deliveries: IntCounterVec,
    /// Tools in this gateway's catalogue.
    pub catalog_tools: IntGauge,
    /// Names a pool registered but is refused because another pool registered them first,
    /// by kind: `tool`, `prompt`, `resource`, `resource_template` (ADR 0015).
    pub catalog_conflicts: IntGaugeVec,
    /// Requests refused by a limit, by the limit's name (`core::Limited::name`,
    /// `open_streams`, `max_connections` for connections refused at the cap).
    pub refused: IntCounterVec,
    /// Requests the authorization policy refused, by method (ADR 0011).
    pub policy_denied: IntCounterVec,
    /// Stateless calls cut off because their client did not read.
    pub cut_off: IntCounter,
    /// Open HTTP connections (at most `--max-connections`).
    pub open_connections: IntGauge,
    /// Connections closed by a deadline, by reason: `header_timeout`, `idle_timeout`.
    pub connections_timed_out: IntCounterVec,
    /// Authorization policy loads by result: `loaded`, `refused` (kept the previous one).
    pub policy_reloads: IntCounterVec,
    /// Bytes and messages held by each store a client can fill, and its byte limit, by
    /// store: `calls`, `events`, `sessions`, `tasks` (sampled every 15 s).
    pub store_bytes: IntGaugeVec,
    pub store_messages: IntGaugeVec,
    pub store_max_bytes: IntGaugeVec,
    /// `/mcp` requests refused for their access token, by `AuthError::reason` (`missing`,
    /// `invalid`, `insufficient_scope`, `unavailable`; ADR 0009).
    pub auth_refused: IntCounterVec,
    /// Tasks that reached a state on this gateway, by state.
    pub tasks: IntCounterVec,
    /// 1 while the bus connection is up, and how often it was re-established.
    pub nats_connected: IntGauge,
    pub nats_reconnects: IntCounter,
}

/// Seconds, from a fast echo (1 ms) to the longest default tool timeout (5 min).
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

struct Builder(Registry);

impl Builder {
    fn add<C: Collector + Clone + 'static>(&self, c: C) -> C {
        self.0
            .register(Box::new(c.clone()))
            .expect("metrics register once");
        c
    }
    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }
    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }
    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help).expect("valid metric"))
    }
    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("valid metric"))
    }
    fn seconds(&self, name: &str, help: &str) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(SECONDS_BUCKETS.to_vec());
        self.add(HistogramVec::new(opts, &["pool", "tool"]).expect("valid metric"))
    }
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let b = Builder(Registry::new_custom(Some("mcpbus".into()), None).expect("valid prefix"));
    let catalog_conflicts = b.gauges(
        "catalog_conflicts",
        "Names refused to a pool because another pool registered them first, by kind",
        &["kind"],
    );
    // Present from the start, so that a scrape shows 0 rather than nothing.
    for kind in crate::catalog::NameKind::ALL {
        catalog_conflicts.with_label_values(&[kind.as_str()]).set(0);
    }
    let events_expired = b.counter(
        "events_expired_total",
        "Resumes refused because the stream's events were gone (410)",
    );
    let build_info = b.gauges("build_info", "The gateway's version", &["version"]);
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    Metrics {
        requests: b.counters(
            "requests_total",
            "JSON-RPC requests by lane and method",
            &["lane", "method"],
        ),
        tool_calls: b.counters(
            "tool_calls_total",
            "Finished tool calls by pool, tool and outcome",
            &["pool", "tool", "outcome"],
        ),
        call_queue_seconds: b.seconds(
            "tool_call_queue_seconds",
            "Time a tool call waited in its pool's queue until a worker accepted it",
        ),
        call_run_seconds: b.seconds(
            "tool_call_run_seconds",
            "Time from a worker accepting a tool call to its final reply",
        ),
        call_seconds: b.seconds(
            "tool_call_seconds",
            "Time from queuing a tool call to its final reply, as the gateway saw it",
        ),
        pool_queue_depth: b.gauges(
            "pool_queue_depth",
            "Calls waiting in a pool's queue (sampled; every gateway reports it)",
            &["pool"],
        ),
        pool_ack_pending: b.gauges(
            "pool_ack_pending",
            "Calls delivered to a pool's workers and not yet acknowledged (sampled)",
            &["pool"],
        ),
        pool_workers: b.gauges(
            "pool_workers",
            "Live worker instances per pool, as this gateway's registry sees them",
            &["pool"],
        ),
        open_streams: b.gauges("open_streams", "Open SSE streams by kind", &["kind"]),
        stream_resumes: b.counters(
            "stream_resumes_total",
            "Streams resumed with Last-Event-ID, by kind",
            &["kind"],
        ),
        replayed_events: b.counters(
            "replayed_events_total",
            "Events sent again on resumed streams, by kind",
            &["kind"],
        ),
        events_expired,
        session_cache: b.counters(
            "session_cache_total",
            "Session record lookups by result: hit, gone, miss, bypass, full",
            &["result"],
        ),
        broadcasts_published: b.counters(
            "broadcasts_published_total",
            "Cluster-wide notifications this gateway stored, by kind",
            &["kind"],
        ),
        broadcast_deliveries: b.counters(
            "broadcast_deliveries_total",
            "Cluster-wide notifications written to client streams, by kind",
            &["kind"],
        ),
        catalog_tools: b.gauge("catalog_tools", "Tools in the catalogue"),
        catalog_conflicts,
        refused: b.counters(
            "refused_total",
            "Requests refused by a limit, by limit",
            &["limit"],
        ),
        policy_denied: b.counters(
            "policy_denied_total",
            "Requests the authorization policy refused, by method",
            &["method"],
        ),
        cut_off: b.counter(
            "calls_cut_off_total",
            "Stateless calls stopped because their client did not read the replies",
        ),
        open_connections: b.gauge("open_connections", "Open HTTP connections"),
        connections_timed_out: b.counters(
            "connections_timed_out_total",
            "Connections closed by the header-read or idle deadline",
            &["reason"],
        ),
        policy_reloads: b.counters(
            "policy_reloads_total",
            "Authorization policy loads by result (refused: the previous policy stays)",
            &["result"],
        ),
        store_bytes: b.gauges(
            "store_bytes",
            "Bytes held by each store a client can fill",
            &["store"],
        ),
        store_messages: b.gauges(
            "store_messages",
            "Messages held by each store a client can fill",
            &["store"],
        ),
        store_max_bytes: b.gauges(
            "store_max_bytes",
            "The byte limit of each store a client can fill (ADR 0007)",
            &["store"],
        ),
        auth_refused: b.counters(
            "auth_refused_total",
            "Requests refused for their access token, by reason",
            &["reason"],
        ),
        tasks: b.counters(
            "tasks_total",
            "Tasks that reached a state on this gateway, by state",
            &["state"],
        ),
        nats_connected: b.gauge("nats_connected", "1 while the NATS connection is up"),
        nats_reconnects: b.counter(
            "nats_reconnects_total",
            "Times the NATS connection was re-established",
        ),
        registry: b.0,
    }
});

/// Methods counted under their own name; anything else is `other`.
const KNOWN_METHODS: [Method; 8] = [
    Method::Initialize,
    Method::Ping,
    Method::ToolsList,
    Method::ToolsCall,
    Method::ServerDiscover,
    Method::SubscriptionsListen,
    Method::ResourcesRead,
    Method::PromptsGet,
];

/// A method as a label: its name if it is one of the known few, else `other`.
pub fn method_label(method: Option<Method>) -> &'static str {
    method
        .filter(|m| KNOWN_METHODS.contains(m))
        .map_or("other", Method::as_str)
}

/// Counts a request the authorization policy refused (answered as if the item did not
/// exist, ADR 0011).
pub fn policy_denied(method: Method) {
    METRICS
        .policy_denied
        .with_label_values(&[method_label(Some(method))])
        .inc();
}

impl Metrics {
    /// Counts a request; methods outside the known set (and unknown ones) count as "other".
    pub fn request(&self, lane: Lane, method: Option<Method>) {
        let lane = match lane {
            Lane::Session => "session",
            Lane::Stateless => "stateless",
        };
        self.requests
            .with_label_values(&[lane, method_label(method)])
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Counts a stream as open for as long as it lives.
pub struct OpenStream(&'static str);

impl OpenStream {
    pub fn new(kind: &'static str) -> Self {
        METRICS.open_streams.with_label_values(&[kind]).inc();
        Self(kind)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        METRICS.open_streams.with_label_values(&[self.0]).dec();
    }
}
