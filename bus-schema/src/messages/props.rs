//! Bus bodies come from workers as well as gateways, and a buggy or hostile worker may send
//! anything: decoding must answer `Err` rather than panic, a body we encode must decode to
//! the same message, and one written for another protocol version is refused as such.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::strategies::{call_reply, json_bytes, near};

/// One valid body of each kind a worker writes, as JSON, to change a field of.
fn worker_bodies() -> impl Strategy<Value = Value> {
    prop_oneof![
        call_reply().prop_map(|r| serde_json::to_value(r).expect("a reply is JSON")),
        Just(
            json!({"protocol": 2, "pool": "p", "instance": "w", "catalog_digest": "d",
                    "heartbeat_ms": 1000, "ttl_ms": 5000, "max_in_flight": 4})
        ),
        Just(json!({"protocol": 2, "pool": "p", "digest": "d",
                    "tools": [{"tool": {"name": "t"}, "timeout_ms": 10}],
                    "resource_templates": [{"uriTemplate": "x://{id}", "name": "x"}]})),
        Just(json!({"protocol": 2, "id": "a1", "level": "info", "data": "hi"})),
        Just(json!({"protocol": 2, "type": "resource_updated", "uri": "x://1"})),
        Just(json!({"protocol": 2, "type": "standalone_opened", "stream": "s", "opened_us": 1})),
    ]
}

/// Decodes `bytes` as every message kind; none may panic, whatever the outcome.
fn decode_as_every_kind(bytes: &[u8]) {
    let _ = decode::<WorkerRecord>(bytes);
    let _ = decode::<GatewayRecord>(bytes);
    let _ = decode::<CatalogRecord>(bytes);
    let _ = decode::<CallRequest>(bytes);
    let _ = decode::<CallReply>(bytes);
    let _ = decode::<StreamOpen>(bytes);
    let _ = decode::<BroadcastEvent>(bytes);
    let _ = decode::<SessionSignal>(bytes);
    let _ = decode::<Announcement>(bytes);
    let _ = decode::<AnnounceReply>(bytes);
    let _ = decode::<ClientAnswer>(bytes);
}

proptest! {
    #[test]
    fn any_bytes_decode_or_fail_without_panicking(bytes in json_bytes()) {
        decode_as_every_kind(&bytes);
    }

    #[test]
    fn a_body_with_one_field_changed_decodes_or_fails_without_panicking(
        body in worker_bodies().prop_flat_map(near)
    ) {
        decode_as_every_kind(&serde_json::to_vec(&body).expect("a value is JSON"));
    }

    #[test]
    fn replies_round_trip(reply in call_reply()) {
        prop_assert_eq!(decode::<CallReply>(&encode(&reply)).ok(), Some(reply));
    }

    /// What decodes encodes to a body that decodes to the same reply: nothing a worker
    /// sends is read one way now and another way after a gateway stored it.
    #[test]
    fn a_decoded_reply_reencodes_to_itself(body in call_reply().prop_map(|r| serde_json::to_value(r).expect("JSON")).prop_flat_map(near)) {
        let bytes = serde_json::to_vec(&body).expect("a value is JSON");
        if let Ok(reply) = decode::<CallReply>(&bytes) {
            prop_assert_eq!(decode::<CallReply>(&encode(&reply)).ok(), Some(reply));
        }
    }

    #[test]
    fn other_protocol_versions_are_refused(
        reply in call_reply(),
        version in any::<u32>().prop_filter("another version", |v| *v != PROTOCOL_VERSION),
    ) {
        let mut body = serde_json::to_value(reply).expect("a reply is JSON");
        body["protocol"] = json!(version);
        let refused = decode::<CallReply>(&serde_json::to_vec(&body).expect("JSON"));
        prop_assert!(matches!(refused, Err(MessageError::UnsupportedProtocol(v)) if v == version));
    }
}
