//! JSON Schemas derived from Rust types for `inputSchema` and `outputSchema`.
//!
//! schemars describes numeric widths with `format` values of its own (`uint32`, `int64`,
//! `double`, ...). They are not JSON Schema formats, and MCP clients that validate schemas
//! (the TypeScript SDK, the MCP Inspector) warn about every one, so derived schemas keep only
//! the formats JSON Schema 2020-12 defines. Schemas written by hand are left as they are.

use schemars::generate::SchemaSettings;
use schemars::transform::{transform_subschemas, Transform};
use schemars::Schema;
use serde_json::{json, Value};

/// The `format` values JSON Schema 2020-12 defines (section 7.3 of the validation spec).
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// A JSON Schema object for `T`, without the `$schema` keyword (MCP tools default to
/// 2020-12, which is what schemars emits) so that schemas stay compact in `tools/list`.
pub(crate) fn of<T: schemars::JsonSchema>() -> Value {
    let schema = SchemaSettings::draft2020_12()
        .with_transform(StandardFormats)
        .into_generator()
        .into_root_schema_for::<T>();
    let mut schema = serde_json::to_value(schema).unwrap_or_else(|_| json!({}));
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.entry("type").or_insert_with(|| json!("object"));
    }
    schema
}

/// Removes every `format` that is not a JSON Schema format, in a schema and its subschemas.
#[derive(Debug, Clone, Copy)]
struct StandardFormats;

impl Transform for StandardFormats {
    fn transform(&mut self, schema: &mut Schema) {
        let non_standard = schema
            .get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| !STANDARD_FORMATS.contains(&f));
        if non_standard {
            schema.remove("format");
        }
        transform_subschemas(self, schema);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Numbers {
        small: u32,
        big: i64,
        ratio: f64,
        list: Vec<u8>,
        maybe: Option<u16>,
        nested: Inner,
    }

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        count: usize,
        /// A property that happens to be called `format`.
        format: String,
        #[schemars(extend("format" = "email"))]
        contact: String,
    }

    /// Every `format` value anywhere in `schema`, with its path.
    fn formats(schema: &Value, path: String, out: &mut Vec<(String, String)>) {
        match schema {
            Value::Object(obj) => {
                for (k, v) in obj {
                    if let (true, Some(f)) = (k == "format", v.as_str()) {
                        out.push((path.clone(), f.to_owned()));
                    }
                    formats(v, format!("{path}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    formats(v, format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn derived_schemas_keep_only_standard_formats() {
        let schema = of::<Numbers>();
        let mut found = Vec::new();
        formats(&schema, String::new(), &mut found);
        assert_eq!(
            found,
            vec![(
                "/$defs/Inner/properties/contact".to_owned(),
                "email".to_owned()
            )]
        );
        // The numbers keep their types and bounds; only the widths' names are gone.
        assert_eq!(schema["properties"]["small"]["type"], "integer");
        assert_eq!(schema["properties"]["small"]["minimum"], 0);
        assert_eq!(schema["properties"]["ratio"]["type"], "number");
        // A property named `format` is a property, not a keyword.
        assert_eq!(
            schema["$defs"]["Inner"]["properties"]["format"]["type"],
            "string"
        );
        assert!(schema.get("$schema").is_none());
    }
}
