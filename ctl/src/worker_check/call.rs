//! The calls the kit sends, built from `bus_schema::messages::CallRequest` as a gateway
//! builds them: on the stateless lane (core-NATS replies to the gateway's reply subject) or
//! on the session lane with durable replies (JetStream publishes to the session events
//! stream, ids `<call_id>:<delivery>:<n>`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bus_schema::mcp::meta;
use bus_schema::mcp::{Method, ProtocolVersion};
use bus_schema::messages::{CallRequest, Lane};
use bus_schema::{subjects, PROTOCOL_VERSION};
use serde_json::{json, Value};

use super::bus::{random_hex, Bus};

/// How a call is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// 2026-07-28: core-NATS replies on `mcpbus.v2.reply.<pool>.<gateway>.<call>`.
    Stateless,
    /// 2025 session lane: `reply_durable`, replies stored in the session events stream.
    Durable,
}

impl Route {
    pub const BOTH: [Route; 2] = [Route::Stateless, Route::Durable];

    pub fn name(self) -> &'static str {
        match self {
            Route::Stateless => "stateless",
            Route::Durable => "session",
        }
    }
}

/// A call to send: what to ask and how it is to be answered.
#[derive(Debug, Clone)]
pub struct CallSpec {
    pub method: String,
    pub params: Value,
    pub route: Route,
    /// Deadline relative to when the call is queued; negative: already passed.
    pub deadline_ms: i64,
    pub capabilities: Value,
    /// Session lane only: name a `cancel_on` subject, as gateways do for 2025 sessions.
    pub cancel_on: bool,
}

/// The deadline kit calls get unless a check says otherwise: longer than any check waits.
const DEFAULT_DEADLINE_MS: i64 = 30_000;

impl CallSpec {
    /// `tools/call` of `tool` with `arguments`, on the stateless lane.
    pub fn tool(tool: &str, arguments: Value) -> Self {
        Self::method(
            Method::ToolsCall.as_str(),
            json!({"name": tool, "arguments": arguments}),
        )
    }

    /// Any method with `params`, on the stateless lane.
    pub fn method(method: &str, params: Value) -> Self {
        Self {
            method: method.to_owned(),
            params,
            route: Route::Stateless,
            deadline_ms: DEFAULT_DEADLINE_MS,
            capabilities: json!({}),
            cancel_on: false,
        }
    }

    pub fn on(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    pub fn durable(self) -> Self {
        self.on(Route::Durable)
    }

    pub fn progress_token(mut self, token: Value) -> Self {
        self.params["_meta"] = json!({ meta::PROGRESS_TOKEN: token });
        self
    }

    pub fn deadline_in_ms(mut self, ms: i64) -> Self {
        self.deadline_ms = ms;
        self
    }

    pub fn capabilities(mut self, capabilities: Value) -> Self {
        self.capabilities = capabilities;
        self
    }

    pub fn with_cancel_on(mut self) -> Self {
        self.cancel_on = true;
        self
    }

    /// The request a gateway would queue for this call, under a fresh call id.
    pub fn request(&self, bus: &Bus) -> CallRequest {
        let call_id = random_hex();
        let (lane, version, reply_to) = match self.route {
            Route::Stateless => (
                Lane::Stateless,
                ProtocolVersion::V2026_07_28,
                subjects::call_reply(&bus.pool, &bus.gateway, &call_id),
            ),
            Route::Durable => (
                Lane::Session,
                ProtocolVersion::V2025_11_25,
                subjects::session_events(&bus.pool, &bus.session, &call_id),
            ),
        };
        let cancel_on = (self.cancel_on && self.route == Route::Durable).then(|| {
            subjects::cancel_request(&bus.pool, &bus.session, &json!(format!("req-{call_id}")))
        });
        CallRequest {
            protocol: PROTOCOL_VERSION,
            call_id,
            method: self.method.clone(),
            params: self.params.clone(),
            reply_to,
            deadline_ms: (now_ms() as i64 + self.deadline_ms).max(0) as u64,
            lane,
            protocol_version: version.as_str().to_owned(),
            client_capabilities: self.capabilities.clone(),
            reply_durable: self.route == Route::Durable,
            task_id: None,
            cancel_on,
            principal: None,
        }
    }
}

/// A call the kit queued.
#[derive(Debug, Clone)]
pub struct Sent {
    pub call_id: String,
    /// Its stream sequence: what its acks name.
    pub seq: u64,
    pub route: Route,
    pub request: CallRequest,
}

impl Sent {
    /// Queues `spec` as a gateway would.
    pub async fn queue(bus: &Bus, spec: &CallSpec) -> Result<Self, String> {
        let request = spec.request(bus);
        let seq = bus
            .queue_call(&request)
            .await
            .map_err(|e| format!("the kit could not queue the call: {e:#}"))?;
        Ok(Sent {
            call_id: request.call_id.clone(),
            seq,
            route: spec.route,
            request,
        })
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}
