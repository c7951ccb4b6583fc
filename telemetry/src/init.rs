//! What every mcpbus binary installs at start: log lines on stderr (text or JSON) and, when
//! the standard `OTEL_*` variables ask for it, the OpenTelemetry layer exporting spans over
//! OTLP/HTTP. With no OTLP endpoint set, no OpenTelemetry layer, provider or exporter exists.

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::json::FlatJson;
use crate::otlp::{self, ExportConfig};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Text on a terminal, JSON otherwise (a file, a pipe, a container's log).
    #[default]
    Auto,
    /// One JSON object a line: every span field of the line's spans (`trace_id`, `call_id`)
    /// at the top level, beside `timestamp`, `level`, `target`, `message` and the event's own.
    Json,
    /// Human-readable lines; colours only on a terminal.
    Text,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            other => Err(format!("unknown log format {other:?} (json, text or auto)")),
        }
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// An `OTEL_*` variable asks for something this build does not do.
    #[error("{0}")]
    Config(String),
    /// The OTLP exporter could not be built (an unparsable endpoint, say).
    #[error("cannot start the OTLP trace exporter: {0}")]
    Exporter(String),
}

/// Keeps the trace exporter alive; dropping it flushes the spans not yet sent.
#[must_use = "dropping it stops the trace exporter"]
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn tracing(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown_with_timeout(std::time::Duration::from_secs(5));
        }
    }
}

/// Info, but only warnings from the NATS client (whose reconnect chatter would drown ours)
/// and from the OpenTelemetry SDK (a failing export, not its start-up notes).
const DEFAULT_FILTER: &str =
    "info,async_nats=warn,opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn";

/// Installs logging and, if configured, tracing for `program` (the default `service.name`).
/// Logs are filtered by `RUST_LOG` (default [`DEFAULT_FILTER`]); spans are never filtered by
/// it, so quieter logs do not cost traces.
pub fn init(program: &'static str, format: LogFormat) -> Result<Telemetry, InitError> {
    let export = ExportConfig::from_env()?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Auto => !terminal,
        LogFormat::Json => true,
        LogFormat::Text => false,
    };
    let logs: Box<dyn Layer<Registry> + Send + Sync> = if json {
        tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(terminal)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    };
    let mut layers = vec![logs];
    let provider = match export {
        Some(config) => {
            let provider = otlp::provider(program, &config)?;
            let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, crate::SCOPE);
            opentelemetry::global::set_tracer_provider(provider.clone());
            // Only our own spans: a dependency's are not part of the call's story.
            let ours = filter_fn(|m| {
                m.target().starts_with("mcpbus") && *m.level() <= tracing::Level::INFO
            });
            layers.push(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_threads(false)
                    .with_location(false)
                    .with_filter(ours)
                    .boxed(),
            );
            crate::set_enabled(true);
            Some(provider)
        }
        None => None,
    };
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(Telemetry { provider })
}
