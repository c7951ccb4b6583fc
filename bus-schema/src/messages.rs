//! Message bodies that cross the bus. All are JSON so that a worker in any language can take
//! part; field names are snake_case for our own envelopes, while MCP objects carried inside
//! them (tools, results) keep MCP's own camelCase shape untouched.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::names::{InstanceId, PoolName};
use crate::PROTOCOL_VERSION;

fn protocol_version() -> u32 {
    PROTOCOL_VERSION
}

/// Why a body could not be accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    #[error("malformed message body: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unsupported protocol version {0} (this build speaks {PROTOCOL_VERSION})")]
    UnsupportedProtocol(u32),
}

/// Parses a body and checks its protocol version.
pub fn decode<T: for<'de> Deserialize<'de> + Versioned>(bytes: &[u8]) -> Result<T, MessageError> {
    let msg: T = serde_json::from_slice(bytes)?;
    if msg.protocol() != PROTOCOL_VERSION {
        return Err(MessageError::UnsupportedProtocol(msg.protocol()));
    }
    Ok(msg)
}

/// Serializes a body. Our types contain only JSON-safe data, so this cannot fail.
pub fn encode<T: Serialize>(msg: &T) -> bytes::Bytes {
    serde_json::to_vec(msg)
        .expect("bus messages are plain JSON values")
        .into()
}

pub use crate::digest::digest;

/// Every body carries the protocol version it was written with.
pub trait Versioned {
    fn protocol(&self) -> u32;
}

macro_rules! versioned {
    ($($t:ty),*) => {$(
        impl Versioned for $t {
            fn protocol(&self) -> u32 {
                self.protocol
            }
        }
    )*};
}
versioned!(
    WorkerRecord,
    CatalogRecord,
    CallRequest,
    CallReply,
    StreamOpen,
    BroadcastEvent,
    ClientAnswer,
    SessionSignal,
    Announcement,
    AnnounceReply,
    GatewayRecord
);

/// A worker instance's liveness record, in the workers KV bucket under
/// `<pool>.<instance>`. The worker re-puts it every `heartbeat_ms`; gateways treat the
/// instance as gone `ttl_ms` after the last put, or at once when the key is deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkerRecord {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    pub pool: PoolName,
    pub instance: InstanceId,
    /// Key suffix of this instance's catalogue in the catalogue bucket.
    pub catalog_digest: String,
    /// How often the worker promises to re-put this record.
    pub heartbeat_ms: u64,
    /// How long after the last put gateways may still route to it. Gateways clamp this to
    /// their own upper bound so that a dead worker always leaves within the documented time.
    pub ttl_ms: u64,
    /// Most calls this instance runs at once; more wait in the queue.
    pub max_in_flight: u32,
    /// Free-form name and version of the SDK, for operators.
    #[serde(default)]
    pub sdk: String,
    /// Unix time in milliseconds since when this instance's pool has served, as the instance
    /// knows it: the earliest `registered_ms` of the pool's live instances when it started,
    /// else its own start. It never changes while the instance runs. When several pools
    /// register one name, gateways give it to the pool with the earliest time among its live
    /// instances, then the first pool name (ADR 0015). Absent (workers from before it): after
    /// every stated time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_ms: Option<u64>,
    /// The instance subscribed to [`crate::subjects::alive`] before it wrote this record and
    /// keeps that subscription while its connection lives (PROTOCOL.md §4.2, ADR 0029):
    /// gateways probe it and remove the instance about a second after its connection is gone
    /// (a kill -9), rather than `ttl_ms` after its last beat. Absent (workers from before
    /// it, or that do not subscribe): the TTL alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alive_subscription: bool,
}

/// A gateway node's record, in the gateways KV bucket under its instance id, for operators
/// (`mcpbusctl status`; ADR 0021). The gateway re-puts it every `heartbeat_ms` and deletes it
/// when it stops gracefully; the bucket's age limit removes it when the gateway dies.
/// Nothing routes by it: workers never read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GatewayRecord {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    /// The gateway's instance id (`gw-…`), as in its logs and reply subjects.
    pub instance: InstanceId,
    /// The gateway's version (`mcpbus-gateway --version`).
    pub version: String,
    /// Where it serves `/mcp`: its listen address as bound (an unspecified address such as
    /// `0.0.0.0:8080` means every interface of its host).
    pub address: String,
    /// Unix time in milliseconds when it started: its uptime is the time since.
    pub started_ms: u64,
    /// How often it re-puts this record. A record older than a few beats belongs to a
    /// gateway that stopped without deleting it.
    pub heartbeat_ms: u64,
    /// Its open SSE streams by kind (`request`, `standalone`, `listen`), as of the last beat.
    #[serde(default)]
    pub open_streams: std::collections::BTreeMap<String, u64>,
}

/// What a pool serves, in the catalogue bucket under `<pool>.<digest>`. Content-addressed:
/// replicas with the same catalogue write the same key, and a new version writes a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CatalogRecord {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    pub pool: PoolName,
    pub digest: String,
    #[serde(default)]
    pub tools: Vec<ToolEntry>,
    /// MCP `Resource` objects (`uri`, `name`, `mimeType`, …) read with `resources/read`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Map<String, Value>>,
    /// MCP `ResourceTemplate` objects (`uriTemplate`, `name`, …); reads of matching URIs
    /// come to this pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_templates: Vec<Map<String, Value>>,
    /// MCP `Prompt` objects (`name`, `description`, `arguments`) served with `prompts/get`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<Map<String, Value>>,
}

/// One tool as a worker registers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ToolEntry {
    /// The MCP `Tool` object exactly as `tools/list` shows it: `name`, `title`,
    /// `description`, `inputSchema`, `outputSchema`, `annotations`, `_meta`.
    pub tool: Map<String, Value>,
    /// How long the gateway waits for this tool's result. Absent: the gateway's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl ToolEntry {
    pub fn name(&self) -> Option<&str> {
        self.tool.get("name").and_then(Value::as_str)
    }

    /// `annotations.idempotentHint`: whether a call may run again after a worker crash.
    pub fn idempotent(&self) -> bool {
        self.tool
            .get("annotations")
            .and_then(|a| a.get("idempotentHint"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Which MCP lane a call arrived on. Workers normally ignore it; it matters for how input
/// requests and results are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Session,
    Stateless,
}

/// A call, published by a gateway to `mcpbus.v2.call.<pool>` (the calls work-queue stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallRequest {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    /// Unique per call; also the `Nats-Msg-Id`, so a retried publish is stored once.
    pub call_id: String,
    /// The MCP method, e.g. `tools/call`.
    pub method: String,
    /// The MCP request params as the client sent them (`name`, `arguments`, `_meta`).
    #[serde(default)]
    pub params: Value,
    /// Subject for every [`CallReply`] about this call.
    pub reply_to: String,
    /// Unix time in milliseconds after which nobody waits for the answer. A worker that
    /// receives the call later acknowledges it without running it.
    pub deadline_ms: u64,
    pub lane: Lane,
    /// The MCP protocol revision the client speaks.
    pub protocol_version: String,
    /// The client's declared capabilities, so a worker never asks for one it lacks.
    #[serde(default)]
    pub client_capabilities: Value,
    /// `reply_to` is captured by the session events stream: publish replies with JetStream
    /// (wait for the acknowledgement, retry with `Nats-Msg-Id = <call_id>:<delivery>:<n>`,
    /// PROTOCOL.md §5.2) so that they survive a gateway crash. When false, a plain publish is
    /// enough.
    #[serde(default)]
    pub reply_durable: bool,
    /// Set when the call may become a task (2026-07-28 tasks extension): the client can
    /// take a task and the tool supports one. The worker answers `escalate` to make it one;
    /// until then it is an ordinary call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Where a cancellation of this call is published, when not [`crate::subjects::cancel`]
    /// of the pool and `call_id` (session-lane calls: [`crate::subjects::cancel_request`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_on: Option<String>,
    /// The verified caller, when the gateway checks tokens. Never the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<crate::principal::Principal>,
}

impl CallRequest {
    /// The subject a worker of `pool` listens on for this call's cancellation.
    pub fn cancel_subject(&self, pool: &crate::names::PoolName) -> String {
        self.cancel_on
            .clone()
            .unwrap_or_else(|| crate::subjects::cancel(pool, &self.call_id))
    }
}

/// What a worker tells the waiting gateway about a call, on the call's `reply_to` subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallReply {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    pub call_id: String,
    /// The instance that handled the call, for tracing and load figures.
    pub instance: InstanceId,
    #[serde(flatten)]
    pub event: CallEvent,
}

/// The kinds of [`CallReply`]. A call sees `accepted`, then any number of `progress` and
/// `log`, then exactly one `result` or `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEvent {
    /// A worker took the call off the queue and started it.
    Accepted,
    /// `notifications/progress` for the request's `progressToken`.
    Progress {
        progress: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// `notifications/message`.
    Log {
        level: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logger: Option<String>,
        data: Value,
    },
    /// A request to the client (`sampling/createMessage`, `elicitation/create`,
    /// `roots/list`), sent on the call's stream. `seq` numbers this call's requests; the
    /// answer comes back on [`crate::subjects::client_answer`]`(pool, call_id, seq)`.
    Request {
        seq: u32,
        method: String,
        params: Value,
    },
    /// The gateway may end the client's stream now: the client reconnects with
    /// `Last-Event-ID` and receives what follows (SSE polling, SEP-1699). Only meaningful on
    /// stored (resumable) streams; others ignore it.
    Detach,
    /// Only for a call with a `task_id`: run on as a task. The gateway answers the client
    /// with a `CreateTaskResult`; the rest of the call's replies are read through `tasks/get`.
    Escalate,
    /// The MCP result object (for `tools/call`, a `CallToolResult`; a tool failure is a
    /// result with `isError: true`).
    Result { result: Value },
    /// A protocol-level failure, returned to the client as a JSON-RPC error.
    Error { error: WireError },
}

/// The first record of a request stream in the session events stream, written by the
/// gateway that accepted the request. Any gateway resuming the stream reads it to know how
/// to finish it. Workers never write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StreamOpen {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    /// Always `"open"`, so a reader can tell it from a [`CallReply`] on the same subject.
    #[serde(rename = "type")]
    pub kind: String,
    pub call_id: String,
    /// The JSON-RPC id of the client's request: the final response must carry it.
    pub request_id: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_token: Option<Value>,
    pub deadline_ms: u64,
    /// The tool's timeout, for the message if the deadline passes.
    pub timeout_ms: u64,
    pub tool: String,
    pub pool: PoolName,
}

impl StreamOpen {
    pub const KIND: &'static str = "open";
}

/// A cluster-wide notification, stored once in the broadcast stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BroadcastEvent {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    #[serde(flatten)]
    pub kind: BroadcastKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BroadcastKind {
    ToolsListChanged,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated {
        uri: String,
    },
    /// A server-wide `notifications/message` (ADR 0023): from an operator
    /// (`mcpbusctl announce`) or a worker (through a gateway, [`Announcement`]), for every
    /// session-lane standalone stream whose log level lets it through.
    Message {
        level: crate::mcp::LogLevel,
        /// Who says it: `mcpbus` for an operator, `<pool>` or `<pool>/<logger>` for a worker
        /// (the gateway sets it; a worker cannot speak as another).
        logger: String,
        data: Value,
    },
}

impl BroadcastKind {
    /// The subject token of [`BroadcastKind::Message`].
    pub const MESSAGE_TOKEN: &'static str = "message";

    /// The subject token this kind is published under.
    pub fn subject_token(&self) -> &'static str {
        match self {
            BroadcastKind::ToolsListChanged => "tools",
            BroadcastKind::PromptsListChanged => "prompts",
            BroadcastKind::ResourcesListChanged => "resources",
            BroadcastKind::ResourceUpdated { .. } => "resource",
            BroadcastKind::Message { .. } => Self::MESSAGE_TOKEN,
        }
    }
}

/// Something every gateway holding a stream of one session must act on, published on
/// [`crate::subjects::session_signal`] (core NATS: only streams open now care).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionSignal {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    #[serde(flatten)]
    pub event: SessionEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionEvent {
    /// A standalone stream `stream` opened for the session at `opened_us` (Unix microseconds): it
    /// replaces every older one, on any node (one standalone stream per session). Older, not
    /// other: a signal that arrives late must not end a stream opened after it.
    StandaloneOpened { stream: String, opened_us: u64 },
    /// The session's resource subscriptions changed: streams re-read them once.
    SubscriptionsChanged,
    /// The session's log level changed (`logging/setLevel`): streams re-read it once.
    LogLevelChanged,
    /// The session ended (`DELETE`): its streams close, on every node.
    Ended,
}

/// A worker's request for a server-wide message, sent to
/// [`crate::subjects::announce`] (ADR 0023). A gateway checks it, stores it once in the
/// broadcast stream as a [`BroadcastKind::Message`], and answers with an [`AnnounceReply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Announcement {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    /// Chosen by the worker, unique per announcement: a retry with the same id is stored
    /// once (within the broadcast stream's duplicate window).
    pub id: String,
    pub level: crate::mcp::LogLevel,
    /// Shown as `<pool>/<logger>`; `<pool>` alone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger: Option<String>,
    /// The `data` of the notification: any JSON.
    pub data: Value,
}

/// The largest [`Announcement`] request a gateway accepts, in bytes (and the largest
/// operator message `mcpbusctl announce` sends).
pub const ANNOUNCEMENT_MAX_BYTES: usize = 16 * 1024;

/// A gateway's answer to an [`Announcement`]: stored, or why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AnnounceReply {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

/// The client's answer to a [`CallEvent::Request`], published by the gateway that received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientAnswer {
    #[serde(default = "protocol_version")]
    pub protocol: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

/// A JSON-RPC error as a worker reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WireError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reply_wire_shape_is_flat() {
        let reply = CallReply {
            protocol: 2,
            call_id: "c1".into(),
            instance: InstanceId::new("w1").unwrap(),
            event: CallEvent::Progress {
                progress: 1.0,
                total: Some(3.0),
                message: None,
            },
        };
        let v = serde_json::to_value(&reply).unwrap();
        assert_eq!(
            v,
            json!({"protocol":2,"call_id":"c1","instance":"w1","type":"progress","progress":1.0,"total":3.0})
        );
        let back: CallReply = decode(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(back, reply);
    }

    /// Found by `props::replies_round_trip`: without serde_json's `float_roundtrip` this
    /// float read back one unit in the last place off, so a worker's data changed on the bus.
    #[test]
    fn floats_cross_the_bus_exactly() {
        let reply = CallReply {
            protocol: 2,
            call_id: "".into(),
            instance: InstanceId::new("-").unwrap(),
            event: CallEvent::Error {
                error: WireError {
                    code: 0,
                    message: "".into(),
                    data: Some(json!([{"protocol": 6.342701820353363e-192}])),
                },
            },
        };
        assert_eq!(decode::<CallReply>(&encode(&reply)).unwrap(), reply);
    }

    #[test]
    fn digests_follow_content_and_chunking() {
        assert_eq!(digest(["a"]), digest(["a"]));
        assert_ne!(digest(["a"]), digest(["b"]));
        assert_ne!(digest(["ab"]), digest(["a", "b"]), "chunk boundaries count");
        assert_eq!(digest(["a"]).len(), 16);
    }

    #[test]
    fn unknown_protocol_versions_are_refused() {
        for other in [1, PROTOCOL_VERSION + 1] {
            let body = json!({"protocol":other,"call_id":"c","instance":"w","type":"accepted"});
            let err = decode::<CallReply>(&serde_json::to_vec(&body).unwrap()).unwrap_err();
            assert!(matches!(err, MessageError::UnsupportedProtocol(v) if v == other));
        }
    }

    #[test]
    fn tool_entry_reads_idempotent_hint() {
        let e: ToolEntry = serde_json::from_value(json!({
            "tool": {"name":"t","inputSchema":{"type":"object"},"annotations":{"idempotentHint":true}}
        }))
        .unwrap();
        assert_eq!(e.name(), Some("t"));
        assert!(e.idempotent());
    }
}
