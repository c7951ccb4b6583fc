//! JSON Schema (draft 2020-12) of every message body on the bus, generated from the types in
//! [`crate::messages`]: what a worker in another language can validate against. The files in
//! `bus-schema/schema/` are this output; a test fails when a type changes and they do not.

use schemars::JsonSchema;
use serde_json::Value;

use crate::messages::{
    AnnounceReply, Announcement, BroadcastEvent, CallReply, CallRequest, CatalogRecord,
    ClientAnswer, GatewayRecord, SessionSignal, StreamOpen, WorkerRecord,
};

/// Each message's file name (without `.json`) and its schema, in PROTOCOL.md order.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        ("worker-record", of::<WorkerRecord>()),
        ("catalog-record", of::<CatalogRecord>()),
        ("call-request", of::<CallRequest>()),
        ("call-reply", of::<CallReply>()),
        ("client-answer", of::<ClientAnswer>()),
        ("broadcast-event", of::<BroadcastEvent>()),
        ("stream-open", of::<StreamOpen>()),
        ("session-signal", of::<SessionSignal>()),
        ("announcement", of::<Announcement>()),
        ("announce-reply", of::<AnnounceReply>()),
        ("gateway-record", of::<GatewayRecord>()),
    ]
}

fn of<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).expect("a schema is JSON")
}
