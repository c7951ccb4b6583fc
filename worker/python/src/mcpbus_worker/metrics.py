"""The worker's own Prometheus metrics, through `prometheus_client` when it is installed
(`pip install mcpbus-worker[metrics]`); without it every function here does nothing.

The names and labels are the Rust SDK's (docs/adr/0022-metrics.md):
`mcpbus_worker_calls_total{pool,tool,outcome}`, `mcpbus_worker_call_seconds{pool,tool}`,
`mcpbus_worker_in_flight{pool}`. Tool labels are the worker's own tool names (`_other` for
a name it does not serve), never client input.
"""

from __future__ import annotations

import time
from typing import Any

try:
    import prometheus_client as _prom
except ImportError:  # optional
    _prom = None

#: Handler run time buckets, in seconds.
BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)

_metrics: dict[str, Any] = {}


def enabled() -> bool:
    return _prom is not None


def _get(name: str) -> Any:
    if not _metrics and _prom is not None:
        _metrics["calls"] = _prom.Counter(
            "mcpbus_worker_calls", "Tool calls this worker finished, by outcome", ["pool", "tool", "outcome"]
        )
        _metrics["seconds"] = _prom.Histogram(
            "mcpbus_worker_call_seconds", "Time the tool handler ran", ["pool", "tool"], buckets=BUCKETS
        )
        _metrics["in_flight"] = _prom.Gauge("mcpbus_worker_in_flight", "Calls running on this worker", ["pool"])
    return _metrics.get(name)


def serve(port: int, addr: str = "127.0.0.1") -> None:
    """Serves /metrics on `addr:port` (a thread of prometheus_client's)."""
    if _prom is None:
        raise RuntimeError("metrics_port needs prometheus_client: pip install mcpbus-worker[metrics]")
    _get("calls")
    _prom.start_http_server(port, addr=addr)


def refused(pool: str, tool: str) -> None:
    calls = _get("calls")
    if calls is not None:
        calls.labels(pool, tool, "refused").inc()


class Running:
    """A tool call in flight, until `finish(outcome)`."""

    def __init__(self, pool: str, tool: str) -> None:
        self.pool, self.tool = pool, tool
        self.started = time.monotonic()
        gauge = _get("in_flight")
        if gauge is not None:
            gauge.labels(pool).inc()

    def finish(self, outcome: str) -> None:
        """`outcome`: result, tool_error, error, cancelled, timeout, abandoned."""
        if _prom is None:
            return
        _get("in_flight").labels(self.pool).dec()
        _get("seconds").labels(self.pool, self.tool).observe(time.monotonic() - self.started)
        _get("calls").labels(self.pool, self.tool, outcome).inc()


def outcome_of(event: dict[str, Any]) -> str:
    """The outcome label of a final reply."""
    if event.get("type") == "result":
        result = event.get("result")
        return "tool_error" if isinstance(result, dict) and result.get("isError") is True else "result"
    return "error"
