//! Prometheus metrics, served on `/metrics` of the metrics listener (`--metrics-listen`). Label values come from small fixed sets (lanes,
//! known MCP methods, outcome names) so that no client input can blow up cardinality.

use std::sync::LazyLock;

use bus_schema::mcp::Method;
use bus_schema::messages::Lane;
use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// JSON-RPC requests by lane and method.
    pub requests: IntCounterVec,
    /// Finished tool calls by outcome: `result`, `tool_error`, `error`.
    pub tool_calls: IntCounterVec,
    /// Open SSE streams by kind: `request`, `standalone`, `listen`.
    pub open_streams: IntGaugeVec,
    /// Tools in this gateway's catalogue.
    pub catalog_tools: IntGauge,
    /// Names a pool registered but is refused because another pool registered them first,
    /// by kind: `tool`, `prompt`, `resource`, `resource_template` (ADR 0015).
    pub catalog_conflicts: IntGaugeVec,
    /// Requests refused by a limit, by the limit's name (`core::Limited::name`,
    /// `open_streams`, `max_connections` for connections refused at the cap).
    pub refused: IntCounterVec,
    /// Stateless calls cut off because their client did not read.
    pub cut_off: prometheus::IntCounter,
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
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new_custom(Some("mcpbus".into()), None).expect("valid prefix");
    let requests = IntCounterVec::new(
        Opts::new("requests_total", "JSON-RPC requests by lane and method"),
        &["lane", "method"],
    )
    .expect("valid metric");
    let tool_calls = IntCounterVec::new(
        Opts::new("tool_calls_total", "Finished tool calls by outcome"),
        &["outcome"],
    )
    .expect("valid metric");
    let open_streams = IntGaugeVec::new(
        Opts::new("open_streams", "Open SSE streams by kind"),
        &["kind"],
    )
    .expect("valid metric");
    let catalog_tools =
        IntGauge::new("catalog_tools", "Tools in the catalogue").expect("valid metric");
    let catalog_conflicts = IntGaugeVec::new(
        Opts::new(
            "catalog_conflicts",
            "Names refused to a pool because another pool registered them first, by kind",
        ),
        &["kind"],
    )
    .expect("valid metric");
    // Present from the start, so that a scrape shows 0 rather than nothing.
    for kind in crate::catalog::NameKind::ALL {
        catalog_conflicts.with_label_values(&[kind.as_str()]).set(0);
    }
    let open_connections =
        IntGauge::new("open_connections", "Open HTTP connections").expect("valid metric");
    let connections_timed_out = IntCounterVec::new(
        Opts::new(
            "connections_timed_out_total",
            "Connections closed by the header-read or idle deadline",
        ),
        &["reason"],
    )
    .expect("valid metric");
    let refused = IntCounterVec::new(
        Opts::new("refused_total", "Requests refused by a limit, by limit"),
        &["limit"],
    )
    .expect("valid metric");
    let policy_reloads = IntCounterVec::new(
        Opts::new(
            "policy_reloads_total",
            "Authorization policy loads by result (refused: the previous policy stays)",
        ),
        &["result"],
    )
    .expect("valid metric");
    let store_gauge = |name: &str, help: &str| {
        IntGaugeVec::new(Opts::new(name, help), &["store"]).expect("valid metric")
    };
    let store_bytes = store_gauge("store_bytes", "Bytes held by each store a client can fill");
    let store_messages = store_gauge(
        "store_messages",
        "Messages held by each store a client can fill",
    );
    let store_max_bytes = store_gauge(
        "store_max_bytes",
        "The byte limit of each store a client can fill (ADR 0007)",
    );
    let auth_refused = IntCounterVec::new(
        Opts::new(
            "auth_refused_total",
            "Requests refused for their access token, by reason",
        ),
        &["reason"],
    )
    .expect("valid metric");
    let cut_off = prometheus::IntCounter::new(
        "calls_cut_off_total",
        "Stateless calls stopped because their client did not read the replies",
    )
    .expect("valid metric");
    for c in [
        Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(tool_calls.clone()),
        Box::new(open_streams.clone()),
        Box::new(catalog_tools.clone()),
        Box::new(catalog_conflicts.clone()),
        Box::new(refused.clone()),
        Box::new(cut_off.clone()),
        Box::new(open_connections.clone()),
        Box::new(connections_timed_out.clone()),
        Box::new(policy_reloads.clone()),
        Box::new(store_bytes.clone()),
        Box::new(store_messages.clone()),
        Box::new(store_max_bytes.clone()),
        Box::new(auth_refused.clone()),
    ] {
        registry.register(c).expect("metrics register once");
    }
    Metrics {
        registry,
        requests,
        tool_calls,
        open_streams,
        catalog_tools,
        catalog_conflicts,
        refused,
        cut_off,
        open_connections,
        connections_timed_out,
        policy_reloads,
        store_bytes,
        store_messages,
        store_max_bytes,
        auth_refused,
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

impl Metrics {
    /// Counts a request; methods outside the known set (and unknown ones) count as "other".
    pub fn request(&self, lane: Lane, method: Option<Method>) {
        let method = method
            .filter(|m| KNOWN_METHODS.contains(m))
            .map_or("other", Method::as_str);
        let lane = match lane {
            Lane::Session => "session",
            Lane::Stateless => "stateless",
        };
        self.requests.with_label_values(&[lane, method]).inc();
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
