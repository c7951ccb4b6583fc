//! `Mcp-Param-*` headers come from the client and may disagree with the body on purpose, to
//! fool a proxy that routes on them: any header value decodes or is refused without a
//! panic, a header a conforming client writes for an argument agrees with it, and a header
//! for any other value does not.

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// What a conforming client sends for a string (2026-07-28 "Value Encoding"): visible
/// ASCII as it is, anything else (controls, non-ASCII, edge whitespace, or text that looks
/// like the sentinel) base64-wrapped.
fn client_encoding(s: &str) -> String {
    let plain = s.bytes().all(|b| (0x20..0x7f).contains(&b))
        && s.trim() == s
        && !(s.starts_with("=?base64?") && s.ends_with("?="));
    if plain {
        s.to_owned()
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        format!("=?base64?{b64}?=")
    }
}

/// An argument a header may mirror, and the header text a client writes for it.
fn argument() -> impl Strategy<Value = (Value, String)> {
    prop_oneof![
        any::<String>().prop_map(|s| (json!(s), client_encoding(&s))),
        any::<i64>().prop_map(|n| (json!(n), n.to_string())),
        any::<u64>().prop_map(|n| (json!(n), n.to_string())),
        any::<i64>().prop_map(|n| (json!(n), format!("{n}.0"))),
        any::<bool>().prop_map(|b| (json!(b), b.to_string())),
    ]
}

fn tool() -> Map<String, Value> {
    let schema = json!({"type": "object", "properties": {
        "a": {"type": "string", "x-mcp-header": "A"}}});
    json!({"name": "t", "inputSchema": schema})
        .as_object()
        .unwrap()
        .clone()
}

fn headers(value: HeaderValue) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("mcp-param-a", value);
    h
}

proptest! {
    #[test]
    fn any_header_value_decodes_or_is_a_header_mismatch(
        raw in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            ".{0,40}".prop_map(|s| format!("=?base64?{s}?=").into_bytes()),
        ]
    ) {
        // Only what a header can carry at all reaches the gateway.
        if let Ok(value) = HeaderValue::from_bytes(&raw) {
            if let Err(e) = decoded(&value, "Mcp-Param-A") {
                prop_assert_eq!(e.code, bus_schema::mcp::code::HEADER_MISMATCH);
            }
        }
    }

    #[test]
    fn what_a_client_writes_agrees_with_the_body((argument, header) in argument()) {
        let value = HeaderValue::from_str(&header).expect("a client writes a valid header");
        let outcome = check(&headers(value), &tool(), &json!({"a": argument}));
        prop_assert!(outcome.is_ok(), "{:?}", outcome.err().map(|e| e.message));
    }

    /// Integers compare as numbers: `42.0` may stand for `42`, but nothing stands for
    /// another integer, however close, and however large both are.
    #[test]
    fn a_header_for_another_integer_disagrees(
        n in any::<i64>(),
        delta in prop_oneof![1i64..4, -3i64..0],
        suffix in prop::sample::select(vec!["", ".0", ".00"]),
    ) {
        let Some(other) = n.checked_add(delta) else { return Ok(()) };
        let header = HeaderValue::from_str(&format!("{other}{suffix}")).unwrap();
        let body = json!({"a": n});
        prop_assert!(check(&headers(header), &tool(), &body).is_err(), "{other}{suffix} agreed with {n}");
    }

    #[test]
    fn a_header_for_another_string_disagrees(a in any::<String>(), b in any::<String>()) {
        prop_assume!(a != b);
        let header = HeaderValue::from_str(&client_encoding(&b)).unwrap();
        let body = json!({"a": a});
        prop_assert!(check(&headers(header), &tool(), &body).is_err());
    }
}
