//! Every POST body reaches [`parse`] before anything else looks at it: whatever the bytes,
//! the answer is a typed message or a JSON-RPC parse/invalid-request error, never a panic;
//! the nesting pre-scan agrees with the nesting the JSON really has; and a well-formed
//! message is read back exactly.

use bus_schema::strategies::{deep_nesting, json_bytes, json_value};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;

/// How deep a value nests arrays and objects (a scalar: 0), as the pre-scan counts.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn request_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
    ]
}

fn params() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        prop::collection::vec((any::<String>(), json_value()), 0..5)
            .prop_map(|f| Value::Object(f.into_iter().collect::<Map<_, _>>())),
    ]
}

proptest! {
    #[test]
    fn any_body_is_a_message_or_a_parse_or_request_error(
        body in prop_oneof![json_bytes(), params().prop_map(|p| json!({"jsonrpc": "2.0", "id": 1, "method": "m", "params": p}).to_string().into_bytes())],
        max_depth in 0usize..100,
    ) {
        match parse(&body, max_depth) {
            Ok(Incoming::Request(r) | Incoming::Notification(r)) => {
                prop_assert!(r.params.is_object() || r.params.is_null());
                prop_assert!(r.id.is_string() || r.id.is_i64() || r.id.is_u64() || r.id.is_null());
            }
            Ok(Incoming::Response(m)) => prop_assert!(m.get("method").is_none()),
            Err(e) => {
                prop_assert!(e.code == -32700 || e.code == -32600, "code {}", e.code);
                prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
            }
        }
    }

    /// The scan counts brackets outside strings only, escapes included, so it refuses
    /// exactly the texts that nest deeper than the limit.
    #[test]
    fn the_prescan_measures_the_real_depth(value in json_value(), max in 0usize..8) {
        let text = value.to_string();
        prop_assert_eq!(exceeds_depth(text.as_bytes(), max), depth(&value) > max);
    }

    #[test]
    fn nesting_past_the_limit_is_a_parse_error(body in deep_nesting(65..20_000)) {
        prop_assert_eq!(parse(&body, 64).unwrap_err().code, -32700);
    }

    #[test]
    fn well_formed_messages_read_back_exactly(
        id in prop::option::of(request_id()),
        method in any::<String>(),
        params in params(),
    ) {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(id) = &id {
            message["id"] = id.clone();
        }
        if !params.is_null() {
            message["params"] = params.clone();
        }
        let body = message.to_string();
        let want = Request { id: id.clone().unwrap_or(Value::Null), method, params };
        let got = parse(body.as_bytes(), 1 + depth(&message)).expect("a well-formed message");
        match id {
            Some(_) => prop_assert_eq!(got, Incoming::Request(want)),
            None => prop_assert_eq!(got, Incoming::Notification(want)),
        }
    }
}
