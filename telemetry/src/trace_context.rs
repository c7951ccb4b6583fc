//! W3C Trace Context (`traceparent`, `tracestate`) as mcpbus carries it: read from an HTTP
//! request's headers or from an MCP request's `params._meta` (SEP-414), written to and read
//! from NATS message headers, and written into a bridged server's `_meta`.
//!
//! The value is validated once, when it enters (a malformed `traceparent` is ignored, as the
//! W3C recommendation says: the request simply starts a new trace), and then passed on as
//! text. It carries no OpenTelemetry type, so a process without tracing still forwards it.

use async_nats::HeaderMap as NatsHeaders;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use serde_json::{Map, Value};

/// The W3C header and SEP-414 `_meta` key of the parent.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header and SEP-414 `_meta` key of vendor state.
pub const TRACESTATE: &str = "tracestate";

/// `tracestate` is at most 32 members of at most 256 bytes: anything longer is not one, and
/// is dropped rather than carried on every bus message.
const MAX_TRACESTATE_BYTES: usize = 32 * 257;

/// One validated trace context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lower case.
    traceparent: String,
    /// Passed on untouched (only its size is bounded).
    tracestate: Option<String>,
}

impl TraceContext {
    /// A context from its two header values; `None` if `traceparent` is not a valid version-00
    /// value (all-zero ids included).
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let tp = traceparent.trim();
        let b = tp.as_bytes();
        // Version 00 is exactly 55 bytes; a later version may append fields after the flags.
        let well_formed = b.len() >= 55
            && (b.len() == 55 || (b[55] == b'-' && &tp[..2] != "00"))
            && b[2] == b'-'
            && b[35] == b'-'
            && b[52] == b'-'
            && [0..2, 3..35, 36..52, 53..55].into_iter().all(|r| {
                tp[r]
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            })
            && &tp[..2] != "ff"
            && tp[3..35].bytes().any(|c| c != b'0')
            && tp[36..52].bytes().any(|c| c != b'0');
        if !well_formed {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE_BYTES && s.is_ascii())
            .map(str::to_owned);
        Some(Self {
            // Whatever version came in, we speak (and pass on) version 00.
            traceparent: format!("00{}", &tp[2..55]),
            tracestate,
        })
    }

    /// A new trace that nothing records (flags 00): it gives log lines across the hops of one
    /// call a shared id when tracing is off and the client sent none.
    pub fn new_unsampled() -> Self {
        let mut ids = [0u8; 24];
        if getrandom::fill(&mut ids).is_err() || ids[..16].iter().all(|b| *b == 0) {
            ids[0] = 1;
        }
        ids[16] |= 1; // never an all-zero parent id
        let mut traceparent = String::with_capacity(55);
        traceparent.push_str("00-");
        push_hex(&mut traceparent, &ids[..16]);
        traceparent.push('-');
        push_hex(&mut traceparent, &ids[16..]);
        traceparent.push_str("-00");
        Self {
            traceparent,
            tracestate: None,
        }
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` value, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The trace id, 32 hex digits: what log lines show.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The parent span id, 16 hex digits.
    pub fn parent_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// Whether the sender records this trace.
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.traceparent[53..55], 16).unwrap_or(0) & 1 == 1
    }

    /// From an HTTP request's headers.
    pub fn from_http(headers: &http::HeaderMap) -> Option<Self> {
        let tp = headers.get(TRACEPARENT)?.to_str().ok()?;
        let ts = headers.get(TRACESTATE).and_then(|v| v.to_str().ok());
        Self::parse(tp, ts)
    }

    /// From an MCP request's `params` (`params._meta.traceparent`, SEP-414).
    pub fn from_params(params: &Value) -> Option<Self> {
        let meta = params.get("_meta")?;
        let tp = meta.get(TRACEPARENT)?.as_str()?;
        Self::parse(tp, meta.get(TRACESTATE).and_then(Value::as_str))
    }

    /// From a NATS message's headers.
    pub fn from_nats(headers: Option<&NatsHeaders>) -> Option<Self> {
        let headers = headers?;
        let tp = headers.get(bus_schema::headers::TRACEPARENT)?.as_str();
        Self::parse(
            tp,
            headers
                .get(bus_schema::headers::TRACESTATE)
                .map(|v| v.as_str()),
        )
    }

    /// Onto a NATS message's headers.
    pub fn write_nats(&self, headers: &mut NatsHeaders) {
        headers.insert(bus_schema::headers::TRACEPARENT, self.traceparent.as_str());
        if let Some(ts) = &self.tracestate {
            headers.insert(bus_schema::headers::TRACESTATE, ts.as_str());
        }
    }

    /// Into an MCP request's `_meta` (SEP-414), replacing what was there.
    pub fn write_meta(&self, meta: &mut Map<String, Value>) {
        meta.insert(TRACEPARENT.into(), Value::String(self.traceparent.clone()));
        match &self.tracestate {
            Some(ts) => meta.insert(TRACESTATE.into(), Value::String(ts.clone())),
            None => meta.remove(TRACESTATE),
        };
    }

    /// As an OpenTelemetry remote span context.
    pub fn span_context(&self) -> SpanContext {
        let trace_id = TraceId::from_hex(self.trace_id()).unwrap_or(TraceId::INVALID);
        let span_id = SpanId::from_hex(self.parent_id()).unwrap_or(SpanId::INVALID);
        let flags = if self.sampled() {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let state = self
            .tracestate
            .as_deref()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        SpanContext::new(trace_id, span_id, flags, true, state)
    }

    /// From an OpenTelemetry span context; `None` if it is not valid.
    pub fn from_span_context(sc: &SpanContext) -> Option<Self> {
        if !sc.is_valid() {
            return None;
        }
        let state = sc.trace_state().header();
        Some(Self {
            traceparent: format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8() & 1
            ),
            tracestate: (!state.is_empty()).then_some(state),
        })
    }
}

/// Lower-case hex, without a formatter: this runs on every request.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn parses_the_w3c_example() {
        let c = TraceContext::parse(TP, Some("rojo=00f067aa0ba902b7")).unwrap();
        assert_eq!(c.trace_id(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(c.parent_id(), "b7ad6b7169203331");
        assert!(c.sampled());
        assert_eq!(c.tracestate(), Some("rojo=00f067aa0ba902b7"));
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            assert!(TraceContext::parse(bad, None).is_none(), "{bad}");
        }
        // A later version may carry more fields; we keep the version-00 part.
        let later = format!("{}-future", TP.replacen("00", "01", 1));
        assert_eq!(TraceContext::parse(&later, None).unwrap().traceparent(), TP);
    }

    #[test]
    fn meta_and_nats_round_trip() {
        let params = json!({"name": "echo", "_meta": {"traceparent": TP, "tracestate": "a=b"}});
        let c = TraceContext::from_params(&params).unwrap();
        let mut h = NatsHeaders::new();
        c.write_nats(&mut h);
        assert_eq!(TraceContext::from_nats(Some(&h)), Some(c.clone()));
        let mut meta = Map::new();
        c.write_meta(&mut meta);
        assert_eq!(meta["traceparent"], TP);
        assert_eq!(meta["tracestate"], "a=b");
    }

    #[test]
    fn span_context_round_trip() {
        let c = TraceContext::parse(TP, Some("a=b")).unwrap();
        let back = TraceContext::from_span_context(&c.span_context()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn a_new_unsampled_trace_is_valid() {
        let c = TraceContext::new_unsampled();
        assert_eq!(TraceContext::parse(c.traceparent(), None), Some(c.clone()));
        assert!(!c.sampled());
    }
}
