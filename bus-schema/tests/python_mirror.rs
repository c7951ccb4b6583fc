//! The Python SDK (`worker/python`) reads every name and limit of the bus from one module,
//! `mcpbus_worker/contract.py`, a mirror of this crate. This test reads that module as text
//! (`NAME = literal` lines; no Python needed) and holds each constant to the value this crate
//! defines, so that neither side can change alone. The few values this crate leaves to
//! PROTOCOL.md are held to that document instead.
//!
//! The set of names is checked too: a constant added to or removed from the module fails
//! here until this test is told what it mirrors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use bus_schema::connect::Setting;
use bus_schema::mcp::{self, capability, Method};
use bus_schema::messages::{CallEvent, CallRequest, Lane, ToolEntry, WireError, WorkerRecord};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::permissions::{Permissions, Role};
use bus_schema::principal::Principal;
use bus_schema::refusal::reason;
use bus_schema::{headers, subjects, topology};

const CONTRACT_PY: &str = "../worker/python/src/mcpbus_worker/contract.py";
const PROTOCOL_MD: &str = "PROTOCOL.md";

/// A Python literal, as the mirror may write one.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for Py {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Py::Str(s) => write!(f, "{s:?}"),
            Py::Int(i) => write!(f, "{i}"),
            Py::Float(x) => write!(f, "{x:?}"),
            Py::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
        }
    }
}

/// What a mirrored constant must equal.
enum Expect {
    /// A value of this crate, and where it comes from (for the failure message).
    Value(Py, &'static str),
    /// A name this crate reads rather than defines: whether it reads the Python value, and
    /// what reads it.
    Read(fn(&Py) -> bool, &'static str),
    /// A value this crate leaves to PROTOCOL.md: the text the document must contain, given
    /// the Python value.
    Documented(fn(&Py) -> String),
}

fn s(v: impl Into<String>) -> Py {
    Py::Str(v.into())
}

fn secs(d: Duration) -> Py {
    Py::Float(d.as_secs_f64())
}

/// The JSON the server receives for one field of a stream or consumer declaration (the
/// enums: retention, discard, storage, ack policy), which nats-py spells the same way.
fn wire(config: &impl serde::Serialize, field: &str) -> Py {
    match serde_json::to_value(config).unwrap().get(field) {
        Some(serde_json::Value::String(v)) => s(v.as_str()),
        other => panic!("{field} is not serialized as a string: {other:?}"),
    }
}

/// A value that serializes as a JSON string (an enum's wire name).
fn json_str(value: impl serde::Serialize) -> Py {
    match serde_json::to_value(value).unwrap() {
        serde_json::Value::String(v) => s(v),
        other => panic!("not serialized as a string: {other}"),
    }
}

/// The `type` tag of a reply event.
fn tag(event: CallEvent) -> Py {
    match serde_json::to_value(event).unwrap().get("type") {
        Some(serde_json::Value::String(v)) => s(v.as_str()),
        other => panic!("a reply event without a string type: {other:?}"),
    }
}

/// What surrounds `sample` in `built`: the Python side builds the same value as
/// `prefix + sample + suffix`.
fn around(built: &str, sample: &str) -> (Py, Py) {
    let (prefix, suffix) = built
        .split_once(sample)
        .unwrap_or_else(|| panic!("{built:?} no longer contains {sample:?}"));
    (s(prefix), s(suffix))
}

/// The part of `built` before `sample`, which must end it.
fn prefix_of(built: &str, sample: &str) -> Py {
    match around(built, sample) {
        (prefix, Py::Str(suffix)) if suffix.is_empty() => prefix,
        _ => panic!("{built:?} no longer ends with {sample:?}: a Python prefix cannot build it"),
    }
}

/// `tool.annotations[hint]: true` makes bus-schema treat the tool as idempotent.
fn reads_idempotent_hint(hint: &Py) -> bool {
    let entry: ToolEntry = serde_json::from_value(serde_json::json!({
        "tool": {"name": "t", "annotations": {unquote(hint): true}}
    }))
    .unwrap();
    entry.idempotent()
}

/// A worker's permissions let it create its pool's consumer on the subject the Python SDK
/// builds from this prefix: `<prefix>CONSUMER.CREATE.<stream>.<consumer>.<filter>`.
fn worker_may_create_its_consumer_under(prefix: &Py) -> bool {
    let pool = pool();
    let create = format!(
        "{}CONSUMER.CREATE.{}.{}.{}",
        unquote(prefix),
        topology::CALLS_STREAM,
        topology::pool_consumer_name(&pool),
        subjects::call(&pool)
    );
    Permissions::of(&Role::Worker(pool))
        .publish
        .contains(&create)
}

/// A principal with every field set, each to a value found nowhere else in it.
fn sample_principal() -> Principal {
    Principal {
        issuer: "sample-issuer".into(),
        subject: "sample-subject".into(),
        scopes: vec!["sample-scope".into()],
        claims: serde_json::from_value(serde_json::json!({"sample-claim": 1})).unwrap(),
    }
}

/// A call carrying the sample principal.
fn sample_call() -> CallRequest {
    CallRequest {
        protocol: bus_schema::PROTOCOL_VERSION,
        call_id: "c1".into(),
        method: Method::ToolsCall.as_str().into(),
        params: serde_json::json!({}),
        reply_to: "r".into(),
        deadline_ms: 1,
        lane: Lane::Stateless,
        protocol_version: "2026-07-28".into(),
        client_capabilities: serde_json::json!({}),
        reply_durable: false,
        task_id: None,
        cancel_on: None,
        principal: Some(sample_principal()),
    }
}

/// A worker record stating when its pool began serving, a value found nowhere else in it.
fn sample_worker() -> WorkerRecord {
    WorkerRecord {
        protocol: bus_schema::PROTOCOL_VERSION,
        pool: pool(),
        instance: InstanceId::new("sample-instance").unwrap(),
        catalog_digest: "d".into(),
        heartbeat_ms: 2000,
        ttl_ms: 6000,
        max_in_flight: 16,
        sdk: String::new(),
        registered_ms: Some(1_700_000_000_123),
        alive_subscription: true,
    }
}

/// The name `value` goes by on the wire inside `container`: its one key holding `value`.
fn key_holding(container: &impl serde::Serialize, value: serde_json::Value) -> Py {
    let json = serde_json::to_value(container).unwrap();
    let keys: Vec<_> = json
        .as_object()
        .expect("serialized as an object")
        .iter()
        .filter(|(_, v)| **v == value)
        .map(|(k, _)| k.clone())
        .collect();
    match keys.as_slice() {
        [key] => s(key.as_str()),
        _ => panic!("{json} holds {value} under {keys:?}, not under exactly one key"),
    }
}

fn v(value: Py, source: &'static str) -> Expect {
    Expect::Value(value, source)
}

/// The environment variable of a connection setting, under its Python name.
fn env(setting: Setting, name: &'static str) -> (&'static str, Expect) {
    (name, v(s(setting.env()), "connect::Setting::env"))
}

fn pool() -> PoolName {
    PoolName::new("sample-pool").unwrap()
}

/// Every constant of `contract.py`, and what it must equal.
fn expectations() -> BTreeMap<&'static str, Expect> {
    use Expect::{Documented, Read};
    let pool = pool();
    let calls = topology::calls_stream(1);
    let consumer = topology::pool_consumer(&pool, 1);
    let workers = topology::kv_stream(topology::WORKERS_KV, 1);
    let instance = InstanceId::new("sample-instance").unwrap();
    let (_, kv_separator) = around(&subjects::worker_key(&pool, &instance), "sample-pool");
    let kv_separator = prefix_of(unquote(&kv_separator), "sample-instance");
    let (_, catalog_separator) = around(&subjects::catalog_key(&pool, "digest"), "sample-pool");
    assert_eq!(
        prefix_of(unquote(&catalog_separator), "digest"),
        kv_separator,
        "worker and catalogue keys no longer share a separator: the Python SDK assumes one"
    );
    let (kv_subject_prefix, _) = around(&workers.subjects[0], topology::WORKERS_KV.bucket);

    BTreeMap::from([
        (
            "PROTOCOL_VERSION",
            v(
                Py::Int(bus_schema::PROTOCOL_VERSION.into()),
                "PROTOCOL_VERSION",
            ),
        ),
        // Subjects.
        (
            "CALL_SUBJECT_PREFIX",
            v(
                prefix_of(&subjects::call(&pool), "sample-pool"),
                "subjects::call",
            ),
        ),
        (
            "CANCEL_SUBJECT_PREFIX",
            v(
                prefix_of(&subjects::cancel(&pool, "c1"), "sample-pool.c1"),
                "subjects::cancel",
            ),
        ),
        (
            "ALIVE_SUBJECT_PREFIX",
            v(
                prefix_of(
                    &subjects::alive(&pool, &InstanceId::new("i1").unwrap()),
                    "sample-pool.i1",
                ),
                "subjects::alive",
            ),
        ),
        (
            "DRAIN_SUBJECT_PREFIX",
            v(
                prefix_of(
                    &subjects::drain(&pool, &InstanceId::new("i1").unwrap()),
                    "sample-pool.i1",
                ),
                "subjects::drain",
            ),
        ),
        (
            "WORKER_INBOX_PREFIX",
            v(
                prefix_of(&subjects::worker_inbox_prefix(&pool), "sample-pool"),
                "subjects::worker_inbox_prefix",
            ),
        ),
        (
            "ANNOUNCE_PREFIX",
            v(
                prefix_of(&subjects::announce(&pool), "sample-pool"),
                "subjects::announce",
            ),
        ),
        (
            "ANNOUNCEMENT_MAX_BYTES",
            v(
                Py::Int(bus_schema::messages::ANNOUNCEMENT_MAX_BYTES as i64),
                "messages::ANNOUNCEMENT_MAX_BYTES",
            ),
        ),
        (
            "LOG_LEVELS",
            v(s(mcp::LogLevel::NAMES.join(",")), "mcp::LogLevel::NAMES"),
        ),
        (
            "SERVICE_NAME_PREFIX",
            v(
                prefix_of(&subjects::service_name(&pool), "sample-pool"),
                "subjects::service_name",
            ),
        ),
        (
            "ANSWER_SUBJECT_PREFIX",
            v(
                prefix_of(&subjects::client_answer(&pool, "c1", 2), "sample-pool.c1.2"),
                "subjects::client_answer",
            ),
        ),
        (
            "JS_API_PREFIX",
            Read(
                worker_may_create_its_consumer_under,
                "permissions::worker (CONSUMER.CREATE)",
            ),
        ),
        (
            "KV_KEY_SEPARATOR",
            v(kv_separator, "subjects::{worker_key, catalog_key}"),
        ),
        // The calls stream, as declared.
        ("CALLS_STREAM", v(s(&calls.name), "topology::CALLS_STREAM")),
        // A pool's consumer, as declared.
        (
            "POOL_CONSUMER_PREFIX",
            v(
                prefix_of(&topology::pool_consumer_name(&pool), "sample-pool"),
                "topology::pool_consumer_name",
            ),
        ),
        (
            "POOL_CONSUMER_DESCRIPTION_PREFIX",
            v(
                prefix_of(consumer.description.as_deref().unwrap(), "sample-pool"),
                "topology::pool_consumer().description",
            ),
        ),
        (
            "POOL_ACK_POLICY",
            v(
                wire(&consumer, "ack_policy"),
                "topology::pool_consumer().ack_policy",
            ),
        ),
        (
            "POOL_ACK_WAIT_SECONDS",
            v(secs(consumer.ack_wait), "topology::POOL_ACK_WAIT"),
        ),
        (
            "POOL_MAX_DELIVER",
            v(Py::Int(consumer.max_deliver), "topology::POOL_MAX_DELIVER"),
        ),
        (
            "POOL_MAX_ACK_PENDING",
            Documented(|x| format!("\"max_ack_pending\": {x}")),
        ),
        (
            "POOL_DELIVER_POLICY",
            v(
                wire(&consumer, "deliver_policy"),
                "topology::pool_consumer().deliver_policy",
            ),
        ),
        (
            "POOL_REPLAY_POLICY",
            v(
                wire(&consumer, "replay_policy"),
                "topology::pool_consumer().replay_policy",
            ),
        ),
        // KV buckets, as declared.
        (
            "WORKERS_BUCKET",
            v(
                s(topology::WORKERS_KV.bucket),
                "topology::WORKERS_KV.bucket",
            ),
        ),
        (
            "CATALOG_BUCKET",
            v(
                s(topology::CATALOG_KV.bucket),
                "topology::CATALOG_KV.bucket",
            ),
        ),
        (
            "CATALOG_REFRESH_SECONDS",
            v(secs(topology::CATALOG_REFRESH), "topology::CATALOG_REFRESH"),
        ),
        (
            "KV_STREAM_PREFIX",
            v(
                prefix_of(&workers.name, topology::WORKERS_KV.bucket),
                "topology::kv_stream().name",
            ),
        ),
        (
            "KV_SUBJECT_PREFIX",
            v(kv_subject_prefix, "topology::kv_stream().subjects"),
        ),
        // Headers.
        ("HEADER_MSG_ID", v(s(headers::MSG_ID), "headers::MSG_ID")),
        (
            "HEADER_TRACEPARENT",
            v(s(headers::TRACEPARENT), "headers::TRACEPARENT"),
        ),
        (
            "HEADER_TRACESTATE",
            v(s(headers::TRACESTATE), "headers::TRACESTATE"),
        ),
        // Bodies.
        (
            "REPLY_ACCEPTED",
            v(tag(CallEvent::Accepted), "messages::CallEvent::Accepted"),
        ),
        (
            "REPLY_PROGRESS",
            v(
                tag(CallEvent::Progress {
                    progress: 0.0,
                    total: None,
                    message: None,
                }),
                "messages::CallEvent::Progress",
            ),
        ),
        (
            "REPLY_LOG",
            v(
                tag(CallEvent::Log {
                    level: "info".into(),
                    logger: None,
                    data: serde_json::Value::Null,
                }),
                "messages::CallEvent::Log",
            ),
        ),
        (
            "REPLY_REQUEST",
            v(
                tag(CallEvent::Request {
                    seq: 1,
                    method: String::new(),
                    params: serde_json::Value::Null,
                }),
                "messages::CallEvent::Request",
            ),
        ),
        (
            "REPLY_RESULT",
            v(
                tag(CallEvent::Result {
                    result: serde_json::Value::Null,
                }),
                "messages::CallEvent::Result",
            ),
        ),
        (
            "REPLY_ERROR",
            v(
                tag(CallEvent::Error {
                    error: WireError {
                        code: 0,
                        message: String::new(),
                        data: None,
                    },
                }),
                "messages::CallEvent::Error",
            ),
        ),
        (
            "LANE_SESSION",
            v(json_str(Lane::Session), "messages::Lane::Session"),
        ),
        (
            "IDEMPOTENT_HINT",
            Read(reads_idempotent_hint, "messages::ToolEntry::idempotent"),
        ),
        // The outcome table's reasons (PROTOCOL.md §5.8), from bus-schema.
        (
            "REASON_DEADLINE_PASSED",
            v(
                s(reason::DEADLINE_PASSED),
                "refusal::reason::DEADLINE_PASSED",
            ),
        ),
        (
            "REASON_WORKER_LOST",
            v(s(reason::WORKER_LOST), "refusal::reason::WORKER_LOST"),
        ),
        (
            "REASON_UNSUPPORTED_PROTOCOL",
            v(
                s(reason::UNSUPPORTED_PROTOCOL),
                "refusal::reason::UNSUPPORTED_PROTOCOL",
            ),
        ),
        (
            "REASON_MALFORMED_CALL",
            v(s(reason::MALFORMED_CALL), "refusal::reason::MALFORMED_CALL"),
        ),
        (
            "REASON_UNKNOWN_TOOL",
            v(s(reason::UNKNOWN_TOOL), "refusal::reason::UNKNOWN_TOOL"),
        ),
        (
            "REASON_UNKNOWN_METHOD",
            v(s(reason::UNKNOWN_METHOD), "refusal::reason::UNKNOWN_METHOD"),
        ),
        (
            "REASON_UNKNOWN_PROMPT",
            v(s(reason::UNKNOWN_PROMPT), "refusal::reason::UNKNOWN_PROMPT"),
        ),
        (
            "REASON_UNKNOWN_RESOURCE",
            v(
                s(reason::UNKNOWN_RESOURCE),
                "refusal::reason::UNKNOWN_RESOURCE",
            ),
        ),
        (
            "REASON_INTERNAL",
            v(s(reason::INTERNAL), "refusal::reason::INTERNAL"),
        ),
        (
            "REASON_UNKNOWN_COMPLETION_REF",
            v(
                s(reason::UNKNOWN_COMPLETION),
                "refusal::reason::UNKNOWN_COMPLETION",
            ),
        ),
        // The caller a call carries.
        (
            "CALL_PRINCIPAL",
            v(
                key_holding(
                    &sample_call(),
                    serde_json::to_value(sample_principal()).unwrap(),
                ),
                "messages::CallRequest.principal",
            ),
        ),
        // The time a pool's names date from.
        (
            "WORKER_ALIVE_SUBSCRIPTION",
            v(
                key_holding(&sample_worker(), serde_json::json!(true)),
                "messages::WorkerRecord.alive_subscription",
            ),
        ),
        (
            "WORKER_REGISTERED_MS",
            v(
                key_holding(&sample_worker(), serde_json::json!(1_700_000_000_123u64)),
                "messages::WorkerRecord.registered_ms",
            ),
        ),
        (
            "PRINCIPAL_ISSUER",
            v(
                key_holding(&sample_principal(), "sample-issuer".into()),
                "principal::Principal.issuer",
            ),
        ),
        (
            "PRINCIPAL_SUBJECT",
            v(
                key_holding(&sample_principal(), "sample-subject".into()),
                "principal::Principal.subject",
            ),
        ),
        (
            "PRINCIPAL_SCOPES",
            v(
                key_holding(&sample_principal(), serde_json::json!(["sample-scope"])),
                "principal::Principal.scopes",
            ),
        ),
        (
            "PRINCIPAL_CLAIMS",
            v(
                key_holding(&sample_principal(), serde_json::json!({"sample-claim": 1})),
                "principal::Principal.claims",
            ),
        ),
        // MCP vocabulary.
        (
            "METHOD_TOOLS_CALL",
            v(s(Method::ToolsCall.as_str()), "mcp::Method::ToolsCall"),
        ),
        (
            "METHOD_RESOURCES_READ",
            v(
                s(Method::ResourcesRead.as_str()),
                "mcp::Method::ResourcesRead",
            ),
        ),
        (
            "METHOD_PROMPTS_GET",
            v(s(Method::PromptsGet.as_str()), "mcp::Method::PromptsGet"),
        ),
        (
            "METHOD_COMPLETION_COMPLETE",
            v(
                s(Method::CompletionComplete.as_str()),
                "mcp::Method::CompletionComplete",
            ),
        ),
        (
            "META_PROGRESS_TOKEN",
            v(s(mcp::meta::PROGRESS_TOKEN), "mcp::meta::PROGRESS_TOKEN"),
        ),
        (
            "INVALID_PARAMS",
            v(
                Py::Int(mcp::code::INVALID_PARAMS),
                "mcp::code::INVALID_PARAMS",
            ),
        ),
        (
            "METHOD_NOT_FOUND",
            v(
                Py::Int(mcp::code::METHOD_NOT_FOUND),
                "mcp::code::METHOD_NOT_FOUND",
            ),
        ),
        (
            "INTERNAL_ERROR",
            v(
                Py::Int(mcp::code::INTERNAL_ERROR),
                "mcp::code::INTERNAL_ERROR",
            ),
        ),
        (
            "RESOURCE_NOT_FOUND",
            v(
                Py::Int(mcp::code::RESOURCE_NOT_FOUND),
                "mcp::code::RESOURCE_NOT_FOUND",
            ),
        ),
        (
            "MISSING_CAPABILITY",
            v(
                Py::Int(mcp::code::MISSING_CAPABILITY),
                "mcp::code::MISSING_CAPABILITY",
            ),
        ),
        (
            "RESULT_INPUT_REQUIRED",
            v(
                s(mcp::result_type::INPUT_REQUIRED),
                "mcp::result_type::INPUT_REQUIRED",
            ),
        ),
        (
            "CAPABILITY_ELICITATION",
            v(s(capability::ELICITATION), "mcp::capability::ELICITATION"),
        ),
        (
            "CAPABILITY_SAMPLING",
            v(s(capability::SAMPLING), "mcp::capability::SAMPLING"),
        ),
        (
            "CAPABILITY_ROOTS",
            v(s(capability::ROOTS), "mcp::capability::ROOTS"),
        ),
        (
            "CLIENT_METHOD_ELICITATION",
            Read(
                |m| capability::for_client_request(unquote(m)) == Some(capability::ELICITATION),
                "mcp::capability::for_client_request",
            ),
        ),
        (
            "CLIENT_METHOD_SAMPLING",
            Read(
                |m| capability::for_client_request(unquote(m)) == Some(capability::SAMPLING),
                "mcp::capability::for_client_request",
            ),
        ),
        (
            "CLIENT_METHOD_ROOTS",
            Read(
                |m| capability::for_client_request(unquote(m)) == Some(capability::ROOTS),
                "mcp::capability::for_client_request",
            ),
        ),
        // Connection settings: the same variables as the Rust binaries.
        env(Setting::Servers, "ENV_NATS_URL"),
        env(Setting::Creds, "ENV_NATS_CREDS"),
        env(Setting::Nkey, "ENV_NATS_NKEY"),
        env(Setting::User, "ENV_NATS_USER"),
        env(Setting::Password, "ENV_NATS_PASSWORD"),
        env(Setting::PasswordFile, "ENV_NATS_PASSWORD_FILE"),
        env(Setting::Token, "ENV_NATS_TOKEN"),
        env(Setting::TokenFile, "ENV_NATS_TOKEN_FILE"),
        env(Setting::TlsCa, "ENV_NATS_TLS_CA"),
        env(Setting::TlsCert, "ENV_NATS_TLS_CERT"),
        env(Setting::TlsKey, "ENV_NATS_TLS_KEY"),
        env(Setting::TlsFirst, "ENV_NATS_TLS_FIRST"),
        // Liveness defaults, which PROTOCOL.md states in its example record.
        (
            "DEFAULT_HEARTBEAT_SECONDS",
            Documented(|x| format!("\"heartbeat_ms\": {}", millis(x))),
        ),
        (
            "DEFAULT_TTL_SECONDS",
            Documented(|x| format!("\"ttl_ms\": {}", millis(x))),
        ),
    ])
}

fn unquote(v: &Py) -> &str {
    match v {
        Py::Str(s) => s,
        other => panic!("expected a string, found {other}"),
    }
}

fn millis(v: &Py) -> i64 {
    match v {
        Py::Float(x) => (x * 1000.0).round() as i64,
        other => panic!("expected seconds as a float, found {other}"),
    }
}

/// The constants of a mirror module. Anything but the module docstring, comments, blank
/// lines and `NAME = literal` is refused: a value this test cannot read, it cannot check.
fn parse(text: &str) -> Result<BTreeMap<String, Py>, String> {
    let mut constants = BTreeMap::new();
    let mut lines = text.lines().enumerate().peekable();
    if let Some((_, first)) = lines.peek() {
        if let Some(rest) = first.trim_start().strip_prefix("\"\"\"") {
            let mut closed = rest.contains("\"\"\"");
            lines.next();
            while !closed {
                let Some((_, line)) = lines.next() else {
                    return Err("the module docstring never ends".to_owned());
                };
                closed = line.contains("\"\"\"");
            }
        }
    }
    for (i, line) in lines {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| Err(format!("line {}: {why}: {line:?}", i + 1));
        let Some((name, value)) = line.split_once(" = ") else {
            return bad("not `NAME = literal`");
        };
        if !name.starts_with(|c: char| c.is_ascii_uppercase())
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return bad("not an UPPER_CASE name at the start of the line");
        }
        let Some(value) = literal(value) else {
            return bad("not a plain str, int, float or bool literal");
        };
        if constants.insert(name.to_owned(), value).is_some() {
            return bad("defined twice");
        }
    }
    Ok(constants)
}

fn literal(v: &str) -> Option<Py> {
    if let Some(inner) = v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return (!inner.contains(['"', '\\'])).then(|| Py::Str(inner.to_owned()));
    }
    match v {
        "True" => return Some(Py::Bool(true)),
        "False" => return Some(Py::Bool(false)),
        _ => {}
    }
    let number = v.replace('_', "");
    let digits = number.strip_prefix('-').unwrap_or(&number);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    if digits.contains('.') {
        number.parse().ok().map(Py::Float)
    } else {
        number.parse().ok().map(Py::Int)
    }
}

fn read(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {full}: {e}"))
}

fn python_contract() -> BTreeMap<String, Py> {
    parse(&read(CONTRACT_PY)).unwrap_or_else(|e| panic!("{CONTRACT_PY}: {e}"))
}

#[test]
fn the_python_mirror_has_exactly_the_names_this_test_checks() {
    let python: BTreeSet<String> = python_contract().into_keys().collect();
    let known: BTreeSet<String> = expectations().into_keys().map(str::to_owned).collect();
    let unchecked: Vec<_> = python.difference(&known).collect();
    let missing: Vec<_> = known.difference(&python).collect();
    assert!(
        unchecked.is_empty() && missing.is_empty(),
        "contract.py and this test disagree on what is mirrored.\n  \
         in contract.py, unknown here (add them to `expectations`): {unchecked:?}\n  \
         expected here, gone from contract.py: {missing:?}"
    );
}

#[test]
fn every_python_constant_equals_its_bus_schema_value() {
    let python = python_contract();
    let protocol_md = read(PROTOCOL_MD);
    let mut wrong = Vec::new();
    for (name, expect) in expectations() {
        let Some(value) = python.get(name) else {
            continue; // reported by the names test
        };
        match expect {
            Expect::Value(expected, source) if *value != expected => {
                wrong.push(format!(
                    "{name} = {value} in Python, but {source} is {expected}"
                ));
            }
            Expect::Value(..) => {}
            Expect::Read(reads, reader) if !reads(value) => {
                wrong.push(format!(
                    "{name} = {value} in Python, but {reader} does not read it"
                ));
            }
            Expect::Read(..) => {}
            Expect::Documented(text) => {
                let text = text(value);
                if !protocol_md.contains(&text) {
                    wrong.push(format!(
                        "{name} = {value} in Python, but PROTOCOL.md lacks {text:?}"
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the Python SDK's contract.py disagrees with bus-schema:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_python_mirror_reads_every_field_of_a_principal() {
    // The Python SDK builds its `Principal` from exactly these names: a field added to
    // bus-schema's must reach it too (or be knowingly left out here).
    let python = python_contract();
    let mirrored: BTreeSet<String> = python
        .iter()
        .filter(|(name, _)| name.starts_with("PRINCIPAL_"))
        .map(|(_, value)| unquote(value).to_owned())
        .collect();
    let on_the_wire: BTreeSet<String> = serde_json::to_value(sample_principal())
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        mirrored, on_the_wire,
        "contract.py's PRINCIPAL_* names and bus-schema's Principal fields differ"
    );
}

#[test]
fn the_python_liveness_defaults_fit_the_buckets() {
    let python = python_contract();
    let seconds = |name: &str| match python.get(name) {
        Some(Py::Float(x)) => *x,
        other => panic!("{name} is {other:?}, not seconds"),
    };
    let (heartbeat, ttl) = (
        seconds("DEFAULT_HEARTBEAT_SECONDS"),
        seconds("DEFAULT_TTL_SECONDS"),
    );
    assert!(
        heartbeat < ttl,
        "a worker must beat ({heartbeat} s) more often than its ttl ({ttl} s)"
    );
    assert!(
        ttl < topology::WORKERS_KV.max_age.as_secs_f64(),
        "the ttl ({ttl} s) must end before the workers bucket ages a record out"
    );
}

#[test]
fn the_parser_refuses_what_it_cannot_check() {
    let good = "\"\"\"Doc.\n\nMore.\n\"\"\"\n\n# c\n#: d\nA = \"x\"\nB_2 = -3\nC = 1_000\nD = 0.5\nE = True\n";
    let parsed = parse(good).unwrap();
    assert_eq!(parsed["A"], Py::Str("x".into()));
    assert_eq!(parsed["B_2"], Py::Int(-3));
    assert_eq!(parsed["C"], Py::Int(1000));
    assert_eq!(parsed["D"], Py::Float(0.5));
    assert_eq!(parsed["E"], Py::Bool(true));
    for bad in [
        "A = ROOT + \".call.\"",
        "A = f\"{ROOT}.call.\"",
        "A = 24 * 3600",
        "A = 1  # trailing comment",
        "import os",
        "a = 1",
        "A: int = 1",
        "A = 1\nA = 2",
        "A = \"esc\\\"aped\"",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
