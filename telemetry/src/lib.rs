//! Logs and traces for mcpbus processes (ADR 0020).
//!
//! - [`TraceContext`]: W3C trace context as it enters (HTTP headers, `params._meta`) and
//!   travels (NATS headers, a bridged server's `_meta`).
//! - [`continue_trace`], [`current`], [`record_past`]: spans that continue a caller's trace,
//!   and what a bus message carries on.
//! - `init` (feature `export`, the binaries only): the log format and, when the `OTEL_*`
//!   variables configure one, the OTLP/HTTP exporter. Without this feature the crate costs a
//!   tool author only the OpenTelemetry API.

mod span;
mod trace_context;

#[cfg(feature = "export")]
mod init;
#[cfg(feature = "export")]
mod json;
#[cfg(feature = "export")]
mod otlp;

pub use span::{
    continue_trace, current, enabled, exported_only, inject_current, link, of_span, record_past,
    scope, set_enabled, SCOPE,
};
pub use trace_context::{TraceContext, TRACEPARENT, TRACESTATE};

#[cfg(feature = "export")]
pub use init::{init, InitError, LogFormat, Telemetry};

/// OpenTelemetry types the instrumented crates name (span kinds, attributes).
pub use opentelemetry::{trace::SpanKind, KeyValue};
