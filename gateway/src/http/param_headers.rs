//! Header/body agreement for `x-mcp-header` tool arguments (2026-07-28): a client mirrors
//! each annotated argument into `Mcp-Param-{Name}`, and a server that reads the body must
//! refuse a request whose headers are missing or disagree (400, -32020), so that a proxy
//! routing on the header cannot be fooled.

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use serde_json::{Map, Value};

use super::wire::McpError;
use crate::catalog::header_params;

/// Checks the `Mcp-Param-*` headers of a `tools/call` of `tool` against its `arguments`.
pub fn check(
    headers: &HeaderMap,
    tool: &Map<String, Value>,
    arguments: &Value,
) -> Result<(), McpError> {
    let schema = tool.get("inputSchema").unwrap_or(&Value::Null);
    // The catalogue only holds tools whose annotations are valid.
    let Ok(params) = header_params(schema) else {
        return Ok(());
    };
    for p in params {
        // An absent or null argument has no header to expect.
        let Some(body) = p.value(arguments) else {
            continue;
        };
        let display = format!("Mcp-Param-{}", p.name);
        let raw = headers.get(display.as_str()).ok_or_else(|| {
            McpError::header_mismatch(format!(
                "Header mismatch: required header {display} is missing (argument {:?} is in the body)",
                p.path.join(".")
            ))
        })?;
        let header = decoded(raw, &display)?;
        if !agrees(body, &header) {
            return Err(McpError::header_mismatch(format!(
                "Header mismatch: {display} header value {header:?} does not match body value {body}"
            )));
        }
    }
    Ok(())
}

/// A mirrored header's value, sentinel-decoded; invalid characters or encoding are a header
/// mismatch (`display` names the header in the message).
pub(super) fn decoded(raw: &HeaderValue, display: &str) -> Result<String, McpError> {
    raw.to_str()
        .ok()
        .and_then(decode_header_value)
        .ok_or_else(|| {
            McpError::header_mismatch(format!(
                "Header mismatch: {display} has invalid characters or encoding"
            ))
        })
}

/// Strings compare exactly, integers numerically (`42.0` equals `42`), booleans as words.
fn agrees(body: &Value, header: &str) -> bool {
    match body {
        Value::String(s) => s == header,
        Value::Number(n) => header.trim().parse::<f64>().ok() == n.as_f64(),
        Value::Bool(b) => header == if *b { "true" } else { "false" },
        _ => false,
    }
}

/// Undoes the `=?base64?…?=` sentinel encoding of header values.
fn decode_header_value(raw: &str) -> Option<String> {
    match raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sentinel_encoded_values_are_decoded() {
        assert_eq!(
            decode_header_value("=?base64?SGVsbG8sIOS4lueVjA==?="),
            Some("Hello, 世界".into())
        );
        assert_eq!(decode_header_value("plain"), Some("plain".into()));
        assert_eq!(decode_header_value("=?base64?***?="), None);
        // Missing padding is invalid, not lenient.
        assert_eq!(decode_header_value("=?base64?SGVsbG8?="), None);
        // Without both markers a value is literal.
        assert_eq!(
            decode_header_value("=?base64?SGVsbG8="),
            Some("=?base64?SGVsbG8=".into())
        );
    }

    fn tool() -> Map<String, Value> {
        json!({"name": "t", "inputSchema": {"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "N"}}}})
        .as_object()
        .unwrap()
        .clone()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn mirrored_arguments_must_agree_with_the_body() {
        let args = json!({"region": "us-west1", "n": 42});
        let ok = headers(&[("mcp-param-region", "us-west1"), ("mcp-param-n", "42.0")]);
        assert!(check(&ok, &tool(), &args).is_ok());
        let encoded = headers(&[
            ("mcp-param-region", "=?base64?dXMtd2VzdDE=?="),
            ("mcp-param-n", "42"),
        ]);
        assert!(check(&encoded, &tool(), &args).is_ok());
        for bad in [
            headers(&[("mcp-param-n", "42")]),
            headers(&[("mcp-param-region", "eu-west1"), ("mcp-param-n", "42")]),
            headers(&[("mcp-param-region", "us-west1"), ("mcp-param-n", "43")]),
            headers(&[
                ("mcp-param-region", "=?base64?dXMtd2VzdDE?="),
                ("mcp-param-n", "42"),
            ]),
        ] {
            let e = check(&bad, &tool(), &args).unwrap_err();
            assert_eq!(e.code, bus_schema::mcp::code::HEADER_MISMATCH);
            assert_eq!(e.status, 400);
        }
        // Arguments not in the body need no header.
        assert!(check(&HeaderMap::new(), &tool(), &json!({"region": null})).is_ok());
    }
}
