//! A real OpenTelemetry collector for the trace tests: `rotel` (PyPI, pinned in
//! scripts/test.sh, in `.venv-otel`), receiving OTLP/HTTP on a free loopback port and printing
//! every span it receives (its debug exporter, detailed) to its log, which [`Collector::spans`]
//! reads back. `MCPBUS_ROTEL` names another build of the agent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::process::Proc;
use crate::{free_port, wait_for_port, workspace_root};

/// One span as the collector received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The `service.name` of the process that sent it.
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// `None` for a root span.
    pub parent_id: Option<String>,
    pub name: String,
    /// As OTLP spells it, e.g. `SPAN_KIND_SERVER`.
    pub kind: String,
    pub start_ns: u128,
    pub end_ns: u128,
    /// Attribute values as the collector prints them, without their type (`Str(x)` → `x`).
    pub attributes: BTreeMap<String, String>,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// A running collector; killed on drop.
pub struct Collector {
    pub proc: Proc,
    /// Its OTLP/HTTP port on 127.0.0.1.
    pub port: u16,
}

/// The agent binary inside the `rotel` wheel.
pub fn rotel_agent() -> PathBuf {
    if let Ok(path) = std::env::var("MCPBUS_ROTEL") {
        return PathBuf::from(path);
    }
    let venv = workspace_root().join(".venv-otel");
    let found = std::fs::read_dir(venv.join("lib"))
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/rotel/rotel-agent"))
        .find(|p| p.exists());
    found.unwrap_or_else(|| panic!("run scripts/test.sh: it installs rotel into {venv:?}"))
}

impl Collector {
    /// A collector that prints every span it receives (for [`Collector::spans`]).
    pub fn start(dir: &Path) -> Result<Self> {
        Self::start_with(dir, true)
    }

    /// With `print: false` it receives and drops spans without printing them (benchmarks).
    pub fn start_with(dir: &Path, print: bool) -> Result<Self> {
        let (port, grpc) = (free_port(), free_port());
        let mut cmd = Command::new(rotel_agent());
        cmd.args([
            "start",
            "--otlp-http-endpoint",
            &format!("127.0.0.1:{port}"),
            // Bound on loopback too, though nothing sends there.
            "--otlp-grpc-endpoint",
            &format!("127.0.0.1:{grpc}"),
            "--exporter",
            "blackhole",
        ]);
        if print {
            cmd.args(["--debug-log", "traces", "--debug-log-verbosity", "detailed"]);
        }
        cmd.arg("--pid-file")
            .arg(dir.join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.join("rotel-agent.log"));
        let proc = Proc::spawn("collector", &mut cmd, dir).context("starting rotel")?;
        wait_for_port(port, Duration::from_secs(20)).context("rotel did not listen")?;
        Ok(Self { proc, port })
    }

    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment that makes a process export its spans here, as `service`, at once
    /// (short batch delay) and sampling everything.
    pub fn env(&self, service: &str) -> Vec<(String, String)> {
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            ("OTEL_SERVICE_NAME", service.into()),
            ("OTEL_TRACES_SAMPLER", "parentbased_always_on".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        parse(&self.proc.log_text())
    }

    /// Waits until the spans of trace `trace_id` satisfy `done`; returns them.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        within: Duration,
        done: impl Fn(&[Span]) -> bool,
    ) -> Result<Vec<Span>> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let spans: Vec<Span> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            if done(&spans) {
                return Ok(spans);
            }
            if tokio::time::Instant::now() > until {
                bail!("trace {trace_id} incomplete after {within:?}: {spans:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Reads rotel's detailed debug output: `ResourceSpans` blocks (with `service.name` among the
/// resource attributes) holding `Span #n` blocks of `Key : value` lines and `-> key:
/// Type(value)` attributes.
pub fn parse(log: &str) -> Vec<Span> {
    #[derive(PartialEq)]
    enum Section {
        Resource,
        SpanAttributes,
        Other,
    }
    let mut spans = Vec::new();
    let mut service = String::new();
    let mut section = Section::Other;
    let mut current: Option<Span> = None;
    let finish = |current: &mut Option<Span>, spans: &mut Vec<Span>| {
        if let Some(s) = current.take() {
            spans.push(s);
        }
    };
    for raw in log.lines() {
        let line = raw.trim();
        if line.starts_with("ResourceSpans #") {
            finish(&mut current, &mut spans);
            service.clear();
            section = Section::Other;
        } else if line == "Resource attributes:" {
            section = Section::Resource;
        } else if line.starts_with("ScopeSpans #") {
            finish(&mut current, &mut spans);
            section = Section::Other;
        } else if line.starts_with("Span #") {
            finish(&mut current, &mut spans);
            section = Section::Other;
            current = Some(Span {
                service: service.clone(),
                trace_id: String::new(),
                span_id: String::new(),
                parent_id: None,
                name: String::new(),
                kind: String::new(),
                start_ns: 0,
                end_ns: 0,
                attributes: BTreeMap::new(),
            });
        } else if line == "Attributes:" && current.is_some() {
            section = Section::SpanAttributes;
        } else if line.ends_with(':') && !line.starts_with("->") {
            // Events:, Links: and the like.
            section = Section::Other;
        } else if let Some(attr) = line.strip_prefix("-> ") {
            let Some((key, value)) = attr.split_once(": ") else {
                continue;
            };
            let value = value
                .split_once('(')
                .and_then(|(_, v)| v.strip_suffix(')'))
                .unwrap_or(value)
                .to_owned();
            match section {
                Section::Resource if key == "service.name" => service = value,
                Section::SpanAttributes => {
                    if let Some(s) = current.as_mut() {
                        s.attributes.insert(key.to_owned(), value);
                    }
                }
                _ => {}
            }
        } else if let (Some(s), Some((key, value))) = (current.as_mut(), line.split_once(':')) {
            let value = value.trim();
            match key.trim() {
                "Trace ID" => s.trace_id = value.to_owned(),
                "Parent ID" => s.parent_id = (!value.is_empty()).then(|| value.to_owned()),
                "ID" => s.span_id = value.to_owned(),
                "Name" => s.name = value.to_owned(),
                "Kind" => s.kind = value.to_owned(),
                "Start time" => s.start_ns = value.parse().unwrap_or(0),
                "End time" => s.end_ns = value.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    finish(&mut current, &mut spans);
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_detailed_debug_output() {
        let log = "\
\u{1b}[2m2026-12-02T11:06:09Z\u{1b}[0m INFO Starting Rotel.
ResourceSpans #0
Resource SchemaURL: 
Resource attributes:
     -> telemetry.sdk.language: Str(python)
     -> service.name: Str(gw-a)
ScopeSpans #0
ScopeSpans SchemaURL: 
InstrumentationScope x 
Span #0
    Trace ID       : ff22a74a39c1465c471a90fd886864a7
    Parent ID      : 6107fae174e55c75
    ID             : 4efac40ebc746c63
    Name           : tools/call echo
    Kind           : SPAN_KIND_SERVER
Start time: 1796209571294588903
End time: 1796209571294607248
    Status code    : STATUS_CODE_UNSET
    Status message : 
Attributes:
     -> mcp.method.name: Str(tools/call)
     -> messaging.message.id: Str(a:b)
Span #1
    Trace ID       : ff22a74a39c1465c471a90fd886864a7
    Parent ID      : 
    ID             : 6107fae174e55c75
    Name           : POST /mcp
    Kind           : SPAN_KIND_SERVER
Start time: 1
End time: 2
";
        let spans = parse(log);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].service, "gw-a");
        assert_eq!(spans[0].name, "tools/call echo");
        assert_eq!(spans[0].parent_id.as_deref(), Some("6107fae174e55c75"));
        assert_eq!(spans[0].attr("mcp.method.name"), Some("tools/call"));
        assert_eq!(spans[0].attr("messaging.message.id"), Some("a:b"));
        assert_eq!(spans[0].start_ns, 1796209571294588903);
        assert_eq!(spans[1].parent_id, None);
        assert!(spans[1].attributes.is_empty());
    }
}
