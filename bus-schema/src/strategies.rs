//! Generators of hostile input for the property tests of every parser of client and bus input
//! (issue 15): JSON nested deeper than any limit, numbers no integer type holds, control
//! characters, bytes that are not UTF-8, and valid messages with one field changed.
//!
//! Test-only. This crate's own tests compile it; the gateway's tests reach it through the
//! `strategies` feature, so that both crates throw the same hostile input at their parsers
//! and no release build carries proptest.

use std::ops::Range;

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

use crate::messages::{CallEvent, CallReply, WireError};
use crate::names::InstanceId;
use crate::PROTOCOL_VERSION;

/// Object keys: mostly field names our messages use, so that a generated object often
/// reaches past a parser's first check; otherwise any text at all.
pub fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Field names of the bus envelopes and of JSON-RPC.
const KEYS: &[&str] = &[
    "protocol",
    "call_id",
    "instance",
    "type",
    "progress",
    "total",
    "message",
    "level",
    "logger",
    "data",
    "seq",
    "method",
    "params",
    "result",
    "error",
    "code",
    "jsonrpc",
    "id",
    "stream",
    "opened_us",
    "uri",
    "kind",
    "_meta",
    "arguments",
    "name",
    "isError",
];

/// Any number serde_json holds: every i64 and u64, and finite floats from the tiny to the
/// huge (NaN and the infinities have no JSON spelling).
pub fn json_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).unwrap_or_else(|| Number::from(0))),
    ]
}

/// Any JSON value, up to a few levels deep and a few dozen nodes, with strings of any
/// characters (controls, NULs, astral planes).
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number().prop_map(Value::Number),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// `value` with one thing changed, as a buggy or hostile peer would send it: a field
/// removed, a field's value replaced by any JSON, or a field added. A non-object is replaced.
pub fn near(value: Value) -> impl Strategy<Value = Value> {
    let Value::Object(fields) = value else {
        return json_value().boxed();
    };
    let keys: Vec<String> = fields.keys().cloned().collect();
    let index = any::<prop::sample::Index>();
    let (removed, replaced, added) = (fields.clone(), fields.clone(), fields);
    prop_oneof![
        index.prop_map(move |i| {
            let mut m = removed.clone();
            if !keys.is_empty() {
                m.remove(&keys[i.index(keys.len())]);
            }
            Value::Object(m)
        }),
        (any::<prop::sample::Index>(), json_value()).prop_map(move |(i, v)| {
            let mut m: Map<String, Value> = replaced.clone();
            let keys: Vec<String> = m.keys().cloned().collect();
            if !keys.is_empty() {
                m.insert(keys[i.index(keys.len())].clone(), v);
            }
            Value::Object(m)
        }),
        (json_key(), json_value()).prop_map(move |(k, v)| {
            let mut m = added.clone();
            m.insert(k, v);
            Value::Object(m)
        }),
    ]
    .boxed()
}

/// JSON text nested `depth` levels of arrays or objects, closed or left open: far past
/// serde_json's own limit of 128 and any limit of ours.
pub fn deep_nesting(depth: Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    (depth, any::<bool>(), any::<bool>()).prop_map(|(depth, objects, closed)| {
        let (open, close): (&[u8], &[u8]) = if objects {
            (br#"{"a":"#, b"}")
        } else {
            (b"[", b"]")
        };
        let mut text = open.repeat(depth);
        text.extend_from_slice(b"1");
        if closed {
            text.extend_from_slice(&close.repeat(depth));
        }
        text
    })
}

/// Number literals past what i64, u64 and f64 hold, or spelled oddly.
pub fn huge_number() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[1-9][0-9]{20,400}",
        "-?[0-9]\\.[0-9]{1,40}[eE][+-]?[0-9]{3,12}",
        "-?0[0-9]+",
        "[+-]?(NaN|Infinity|inf)",
    ]
}

/// Bytes a peer might send as a JSON body: any bytes (mostly not UTF-8), JSON text of a
/// generated value (sometimes cut short), deep nesting, a huge number, or a valid-looking
/// object holding one.
pub fn json_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (json_value(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let at = cut.index(text.len() + 1);
            text[..at].to_vec()
        }),
        deep_nesting(100..3000),
        huge_number().prop_map(String::into_bytes),
        (json_key(), huge_number())
            .prop_map(|(k, n)| format!("{{{}:{n}}}", Value::String(k)).into_bytes()),
    ]
}

/// Any valid instance id.
pub fn instance() -> impl Strategy<Value = InstanceId> {
    "[A-Za-z0-9_-]{1,64}".prop_map(|i| InstanceId::new(i).expect("a valid instance id"))
}

/// Any float a JSON number can carry: finite (NaN and the infinities have no JSON spelling).
pub fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

/// A JSON-RPC error as a worker may report it: any code, any text, any data. A `null`
/// data is left out: JSON cannot tell it from no data, and both read back as `None`.
pub fn wire_error() -> impl Strategy<Value = WireError> {
    let data = json_value().prop_filter("null is no data", |v| !v.is_null());
    (any::<i64>(), any::<String>(), prop::option::of(data)).prop_map(|(code, message, data)| {
        WireError {
            code,
            message,
            data,
        }
    })
}

/// Every kind of reply event, with any payloads.
pub fn call_event() -> impl Strategy<Value = CallEvent> {
    prop_oneof![
        Just(CallEvent::Accepted),
        Just(CallEvent::Detach),
        Just(CallEvent::Escalate),
        (
            finite(),
            prop::option::of(finite()),
            prop::option::of(any::<String>())
        )
            .prop_map(|(progress, total, message)| CallEvent::Progress {
                progress,
                total,
                message
            }),
        (
            any::<String>(),
            prop::option::of(any::<String>()),
            json_value()
        )
            .prop_map(|(level, logger, data)| CallEvent::Log {
                level,
                logger,
                data
            }),
        (any::<u32>(), any::<String>(), json_value()).prop_map(|(seq, method, params)| {
            CallEvent::Request {
                seq,
                method,
                params,
            }
        }),
        json_value().prop_map(|result| CallEvent::Result { result }),
        wire_error().prop_map(|error| CallEvent::Error { error }),
    ]
}

/// A reply as a worker may send it: any call id, any event, of this protocol version.
pub fn call_reply() -> impl Strategy<Value = CallReply> {
    (any::<String>(), instance(), call_event()).prop_map(|(call_id, instance, event)| CallReply {
        protocol: PROTOCOL_VERSION,
        call_id,
        instance,
        event,
    })
}

/// The bytes of a reply from a buggy or hostile worker: a valid reply, one with a field
/// changed, or any bytes at all.
pub fn reply_bytes() -> impl Strategy<Value = Vec<u8>> {
    let json = |v: Value| serde_json::to_vec(&v).expect("a value is JSON");
    let valid = || call_reply().prop_map(|r| serde_json::to_value(r).expect("a reply is JSON"));
    prop_oneof![
        2 => valid().prop_map(json),
        2 => valid().prop_flat_map(near).prop_map(json),
        1 => json_bytes(),
    ]
}
