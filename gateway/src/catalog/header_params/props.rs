//! Tool schemas come from workers: any schema yields annotations or a reason the tool is
//! invalid, never a panic, and every annotation accepted names a header we can look up.

use axum::http::HeaderName;
use bus_schema::strategies::json_value;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// Schemas near valid ones: `properties` chains with annotations of any name and type,
/// under any keyword, mixed with arbitrary JSON.
fn schema() -> impl Strategy<Value = Value> {
    let annotated = (
        prop_oneof!["[A-Za-z0-9-]{1,12}", any::<String>()],
        prop::sample::select(vec!["string", "integer", "boolean", "number", "object"]),
    )
        .prop_map(|(name, ty)| json!({"type": ty, "x-mcp-header": name}));
    let leaf = prop_oneof![annotated, json_value()];
    leaf.prop_recursive(5, 32, 4, |inner| {
        let keyword = prop::sample::select(vec![
            "properties",
            "items",
            "anyOf",
            "$defs",
            "not",
            "additionalProperties",
            "x",
        ]);
        (keyword, prop::collection::vec(("[a-c]", inner), 1..4)).prop_map(|(k, props)| {
            let props: serde_json::Map<String, Value> = props.into_iter().collect();
            json!({"type": "object", k: props})
        })
    })
}

proptest! {
    #[test]
    fn any_schema_gives_usable_headers_or_an_error(
        schema in prop_oneof![schema(), json_value()],
        arguments in json_value(),
    ) {
        if let Ok(params) = header_params(&schema) {
            let mut names = std::collections::HashSet::new();
            for p in &params {
                prop_assert!(!p.path.is_empty());
                prop_assert!(names.insert(p.name.to_ascii_lowercase()), "{} twice", p.name);
                let header = format!("mcp-param-{}", p.name);
                prop_assert!(HeaderName::from_bytes(header.as_bytes()).is_ok(), "{header}");
                if let Some(v) = p.value(&arguments) {
                    prop_assert!(!v.is_null());
                }
            }
        }
    }
}
