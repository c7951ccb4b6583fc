//! Spans and the trace context that travels with them.
//!
//! With tracing on (an OTLP exporter configured, see `init`), a `tracing` span is an
//! OpenTelemetry span: its parent comes from the trace context a message carried, and the
//! context sent on is the span's own. With tracing off no OpenTelemetry layer is installed,
//! and a process still passes on the context it was given (or one it made up, unsampled), so
//! log lines across the hops of a call share a trace id and a worker that does trace joins
//! the client's trace.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::TraceContext;

/// Set once, by `init`, when the OpenTelemetry layer is installed.
static ENABLED: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    /// The context a request or call passes on when no span records it (tracing off).
    static PASSED: TraceContext;
}

/// The name spans are recorded under (the instrumentation scope).
pub const SCOPE: &str = "mcpbus";

/// Whether spans are recorded and exported. With tracing off, the instrumented crates make
/// lean spans: only the fields log lines need (`trace_id`, `call_id`), since formatting the
/// attributes of spans nobody exports is most of what spans cost.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Called by `init` (and by tests that install their own layer).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// `make()` when spans are exported, else no span at all: for spans that carry no field a
/// log line needs (auth, policy, publish).
pub fn exported_only(make: impl FnOnce() -> Span) -> Span {
    if enabled() {
        make()
    } else {
        Span::none()
    }
}

/// Makes `span` continue `parent` (its OpenTelemetry parent when tracing is on) and records
/// the trace id in its `trace_id` field. Without a `parent` the span continues whatever
/// encloses it (the current span, or the context of [`scope`]), else starts a new trace.
/// Call it before the span is first entered. Returns the context to pass on from inside
/// the span.
pub fn continue_trace(span: &Span, parent: Option<TraceContext>) -> TraceContext {
    if enabled() {
        if let Some(p) = &parent {
            let _ = span.set_parent(Context::new().with_remote_span_context(p.span_context()));
        }
        if let Some(own) = of_span(span) {
            span.record("trace_id", own.trace_id());
            return own;
        }
    }
    let ctx = parent
        .or_else(|| PASSED.try_with(Clone::clone).ok())
        .unwrap_or_else(TraceContext::new_unsampled);
    span.record("trace_id", ctx.trace_id());
    ctx
}

/// The span's own context, when tracing is on and the span is recorded.
pub fn of_span(span: &Span) -> Option<TraceContext> {
    if !enabled() {
        return None;
    }
    TraceContext::from_span_context(span.context().span().span_context())
}

/// Links `span` to `other` (a span of another trace it relates to), when tracing is on.
pub fn link(span: &Span, other: &TraceContext) {
    if enabled() {
        span.add_link(other.span_context());
    }
}

/// Runs `f` with `ctx` as the context [`current`] falls back to. (Not an `async fn`: that
/// would move `f`, which may be a large future, once more.)
pub fn scope<F: Future>(
    ctx: TraceContext,
    f: F,
) -> tokio::task::futures::TaskLocalFuture<TraceContext, F> {
    PASSED.scope(ctx, f)
}

/// What a bus message sent now carries: the current span's context when tracing records it,
/// else the context of the request or call this task serves (see [`scope`]).
pub fn current() -> Option<TraceContext> {
    of_span(&Span::current()).or_else(|| PASSED.try_with(Clone::clone).ok())
}

/// Puts [`current`] on a NATS message's headers.
pub fn inject_current(headers: &mut async_nats::HeaderMap) {
    if let Some(c) = current() {
        c.write_nats(headers);
    }
}

/// Records a span that already happened, as a child of `parent`: how the time a call waited
/// in the queue is shown, from the moment JetStream stored it (`start`) to now. Nothing when
/// tracing is off or `parent` is not sampled.
pub fn record_past(
    name: &'static str,
    kind: SpanKind,
    parent: &TraceContext,
    start: SystemTime,
    attributes: Vec<KeyValue>,
) {
    if !enabled() || !parent.sampled() {
        return;
    }
    let tracer = opentelemetry::global::tracer(SCOPE);
    let cx = Context::new().with_remote_span_context(parent.span_context());
    let mut span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(&tracer, &cx);
    span.end();
}
