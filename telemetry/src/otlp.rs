//! The OTLP trace exporter, configured only by the standard OpenTelemetry variables:
//!
//! - on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//!   unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`;
//! - `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`: `http/protobuf` only (ADR 0020); anything else
//!   stops the process at start, saying so;
//! - `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`,
//!   `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, `..._TIMEOUT`, `OTEL_BSP_*`: read by the
//!   OpenTelemetry SDK itself.
//!
//! Spans are batched on the SDK's own thread; its HTTP requests go through the reqwest
//! client the gateway already builds, driven by a one-thread runtime of its own, so that
//! exporting never runs on (or waits for) the threads serving calls.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

use crate::InitError;

/// What the environment asks for.
#[derive(Debug)]
pub(crate) struct ExportConfig {
    /// The variable that turned export on, for messages.
    pub(crate) endpoint_var: &'static str,
}

const PROTOCOL_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
];

impl ExportConfig {
    /// `None` when tracing is off.
    pub(crate) fn from_env() -> Result<Option<Self>, InitError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, InitError> {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some(exporters) = var("OTEL_TRACES_EXPORTER") {
            let names: Vec<&str> = exporters.split(',').map(str::trim).collect();
            if names.contains(&"none") {
                return Ok(None);
            }
            if let Some(other) = names.iter().find(|n| **n != "otlp") {
                return Err(InitError::Config(format!(
                    "OTEL_TRACES_EXPORTER={other} is not supported: mcpbus exports traces with otlp (or none)"
                )));
            }
        }
        let endpoint_var = [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .into_iter()
        .find(|name| var(name).is_some());
        let Some(endpoint_var) = endpoint_var else {
            return Ok(None);
        };
        for name in PROTOCOL_VARS {
            if let Some(p) = var(name) {
                if p.trim() != "http/protobuf" {
                    return Err(InitError::Config(format!(
                        "{name}={p} is not supported: mcpbus exports OTLP over HTTP only. Set it to \
                         http/protobuf and point {endpoint_var} at the collector's OTLP/HTTP port \
                         (usually 4318)"
                    )));
                }
                break;
            }
        }
        Ok(Some(Self { endpoint_var }))
    }
}

/// The tracer provider exporting to the configured collector.
pub(crate) fn provider(
    program: &'static str,
    config: &ExportConfig,
) -> Result<SdkTracerProvider, InitError> {
    let client = Client::new().map_err(InitError::Exporter)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(client)
        .build()
        .map_err(|e| InitError::Exporter(format!("{e} (from {})", config.endpoint_var)))?;
    let mut resource = Resource::builder();
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| {
            a.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    if !named {
        resource = resource.with_service_name(program);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Sends the exporter's requests. The batch processor calls it on its own thread, outside
/// any Tokio runtime, so the client carries a one-thread runtime to drive reqwest.
struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mcpbus OTLP/HTTP client")
    }
}

/// A collector that does not answer must not hold the batch thread for long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    fn new() -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, runtime })
    }
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let send = async {
            let response = self.http.execute(request).await?;
            let mut out = Response::builder().status(response.status());
            if let Some(h) = out.headers_mut() {
                *h = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(out.body(body)?)
        };
        // Called from the batch thread, never from inside a runtime (where this would panic).
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("the OTLP client was called from inside a Tokio runtime".into());
        }
        self.runtime.block_on(send)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Option<ExportConfig>, InitError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ExportConfig::from_lookup(|n| vars.get(n).cloned())
    }

    #[test]
    fn off_unless_an_endpoint_is_set() {
        assert!(config(&[]).unwrap().is_none());
        assert!(config(&[("OTEL_SERVICE_NAME", "gw")]).unwrap().is_none());
        let on = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]).unwrap();
        assert_eq!(on.unwrap().endpoint_var, "OTEL_EXPORTER_OTLP_ENDPOINT");
        let traces = config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/v1/traces")]);
        assert!(traces.unwrap().is_some());
    }

    #[test]
    fn disabled_wins() {
        let e = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert!(config(&[e, ("OTEL_SDK_DISABLED", "true")])
            .unwrap()
            .is_none());
        assert!(config(&[e, ("OTEL_TRACES_EXPORTER", "none")])
            .unwrap()
            .is_none());
        assert!(config(&[e, ("OTEL_TRACES_EXPORTER", "zipkin")]).is_err());
    }

    #[test]
    fn grpc_is_refused_with_a_reason() {
        let e = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317");
        let err = config(&[e, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http/protobuf") && err.contains("4318"),
            "{err}"
        );
        // The traces-specific variable wins over the general one.
        assert!(config(&[
            e,
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap()
        .is_some());
        assert!(config(&[e, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).is_err());
    }
}
