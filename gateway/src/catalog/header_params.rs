//! `x-mcp-header` annotations in tool input schemas (2026-07-28, Streamable HTTP): tool
//! arguments a client must mirror into `Mcp-Param-{Name}` headers.
//!
//! A tool whose annotations break the spec's constraints is invalid as a whole: clients must
//! drop it, so the gateway leaves it out of the catalogue rather than advertise it.

use serde_json::Value;

/// One annotated argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderParam {
    /// The `{Name}` of `Mcp-Param-{Name}`.
    pub name: String,
    /// The chain of `properties` keys from the schema root to the argument.
    pub path: Vec<String>,
}

impl HeaderParam {
    /// The argument's value in `arguments`, if present and not null.
    pub fn value<'a>(&self, arguments: &'a Value) -> Option<&'a Value> {
        let mut at = arguments;
        for key in &self.path {
            at = at.get(key)?;
        }
        (!at.is_null()).then_some(at)
    }
}

/// Every annotation in `schema`, or why the tool is invalid.
pub fn header_params(schema: &Value) -> Result<Vec<HeaderParam>, String> {
    let mut found = Vec::new();
    collect(schema, &mut Vec::new(), &mut found, true)?;
    let mut seen = std::collections::HashSet::new();
    for p in &found {
        if !seen.insert(p.name.to_ascii_lowercase()) {
            return Err(format!("x-mcp-header {:?} is used twice", p.name));
        }
    }
    Ok(found)
}

/// Walks `properties` chains; an annotation reached any other way (or at the root) is an error.
fn collect(
    schema: &Value,
    path: &mut Vec<String>,
    found: &mut Vec<HeaderParam>,
    reachable: bool,
) -> Result<(), String> {
    let Some(obj) = schema.as_object() else {
        return Ok(());
    };
    if let Some(name) = obj.get("x-mcp-header") {
        if !reachable || path.is_empty() {
            return Err(
                "x-mcp-header must sit on a property reached only through `properties`".into(),
            );
        }
        let name = name.as_str().ok_or("x-mcp-header must be a string")?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(format!(
                "x-mcp-header {name:?} is not an HTTP field-name token"
            ));
        }
        match obj.get("type").and_then(Value::as_str) {
            Some("string" | "integer" | "boolean") => {}
            other => {
                return Err(format!(
                    "x-mcp-header {name:?} is on a property of type {other:?}; only string, integer and boolean may be"
                ))
            }
        }
        found.push(HeaderParam {
            name: name.to_owned(),
            path: path.clone(),
        });
    }
    for (key, sub) in obj {
        match key.as_str() {
            "properties" => {
                for (prop, schema) in sub.as_object().into_iter().flatten() {
                    path.push(prop.clone());
                    collect(schema, path, found, reachable)?;
                    path.pop();
                }
            }
            // Every other keyword that holds schemas makes what is under it unreachable.
            "$defs" | "definitions" | "patternProperties" | "dependentSchemas" => {
                for nested in sub.as_object().into_iter().flat_map(|o| o.values()) {
                    collect(nested, path, found, false)?;
                }
            }
            "items"
            | "prefixItems"
            | "additionalProperties"
            | "oneOf"
            | "anyOf"
            | "allOf"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains" => {
                let nested: Vec<&Value> = match sub {
                    Value::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                for nested in nested {
                    collect(nested, path, found, false)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotations_are_found_along_properties_chains() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "db": {"type": "object", "properties": {"id": {"type": "integer", "x-mcp-header": "Db-Id"}}},
            "plain": {"type": "string"}}});
        let params = header_params(&schema).unwrap();
        assert_eq!(params.len(), 2);
        let db = params.iter().find(|p| p.name == "Db-Id").unwrap();
        assert_eq!(db.path, vec!["db", "id"]);
        assert_eq!(db.value(&json!({"db": {"id": 7}})), Some(&json!(7)));
        assert_eq!(db.value(&json!({"db": {"id": null}})), None);
    }

    #[test]
    fn invalid_annotations_make_the_tool_invalid() {
        for schema in [
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "Bad Name"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "X"},
                                  "b": {"type": "string", "x-mcp-header": "x"}}}),
            json!({"properties": {"a": {"type": "array", "items": {"type": "string", "x-mcp-header": "A"}}}}),
            json!({"anyOf": [{"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}]}),
        ] {
            assert!(header_params(&schema).is_err(), "{schema}");
        }
    }
}
