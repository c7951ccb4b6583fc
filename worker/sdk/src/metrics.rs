//! The worker's own Prometheus metrics: calls by outcome, handler run time, calls running.
//! Served on `/metrics` when [`crate::WorkerConfig::metrics_listen`] is set (off by default).
//! Names and labels match the Python SDK's (`docs/adr/0022-metrics.md`); tool labels are
//! the worker's own tool names, never client input.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use bus_schema::names::PoolName;
use http_body_util::Full;
use hyper::body::Bytes;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Metrics {
    registry: Registry,
    calls: IntCounterVec,
    seconds: HistogramVec,
    in_flight: IntGaugeVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new_custom(Some("mcpbus_worker".into()), None).expect("valid prefix");
    let calls = IntCounterVec::new(
        Opts::new("calls_total", "Tool calls this worker finished, by outcome"),
        &["pool", "tool", "outcome"],
    )
    .expect("valid metric");
    let seconds = HistogramVec::new(
        HistogramOpts::new("call_seconds", "Time the tool handler ran").buckets(vec![
            0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0,
        ]),
        &["pool", "tool"],
    )
    .expect("valid metric");
    let in_flight = IntGaugeVec::new(
        Opts::new("in_flight", "Calls running on this worker"),
        &["pool"],
    )
    .expect("valid metric");
    for c in [
        Box::new(calls.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(seconds.clone()),
        Box::new(in_flight.clone()),
    ] {
        registry.register(c).expect("metrics register once");
    }
    Metrics {
        registry,
        calls,
        seconds,
        in_flight,
    }
});

/// A tool call that was refused before it ran (unknown tool, bad arguments, deadline).
pub(crate) fn refused(pool: &PoolName, tool: &str) {
    METRICS
        .calls
        .with_label_values(&[pool.as_str(), tool, "refused"])
        .inc();
}

/// A tool call running on this worker: counted in flight until [`Running::finish`].
pub(crate) struct Running<'a> {
    pool: &'a PoolName,
    tool: &'a str,
    started: tokio::time::Instant,
}

impl<'a> Running<'a> {
    pub(crate) fn start(pool: &'a PoolName, tool: &'a str) -> Self {
        METRICS.in_flight.with_label_values(&[pool.as_str()]).inc();
        Self {
            pool,
            tool,
            started: tokio::time::Instant::now(),
        }
    }

    /// `outcome`: `result`, `tool_error`, `error`, `cancelled`, `timeout`, `abandoned`.
    pub(crate) fn finish(self, outcome: &str) {
        let labels = [self.pool.as_str(), self.tool];
        METRICS
            .seconds
            .with_label_values(&labels)
            .observe(self.started.elapsed().as_secs_f64());
        METRICS
            .calls
            .with_label_values(&[labels[0], labels[1], outcome])
            .inc();
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        METRICS
            .in_flight
            .with_label_values(&[self.pool.as_str()])
            .dec();
    }
}

fn render() -> String {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Serves `/metrics` on `listener` until `stop`. Every path answers with the metrics: a
/// scrape endpoint has nothing else to route.
pub(crate) async fn serve(listener: TcpListener, stop: CancellationToken) {
    loop {
        let (io, _) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = hyper::service::service_fn(|_req| async {
            let body = Full::new(Bytes::from(render()));
            let resp = hyper::Response::builder()
                .header("content-type", "text/plain; version=0.0.4")
                .body(body)
                .expect("a valid response");
            Ok::<_, Infallible>(resp)
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(io), service);
        tokio::spawn(async move {
            // A scrape is one short request; a client that holds a connection open gets
            // it closed after a minute.
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

/// Binds the metrics listener (an error here is the operator's to see at start-up).
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
