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
        Value::Number(n) => match n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)) {
            Some(n) => denotes_integer(header.trim(), n),
            // A float body is an f64 on both sides of the gateway, so f64 is exact here.
            None => header.trim().parse::<f64>().ok() == n.as_f64(),
        },
        Value::Bool(b) => header == if *b { "true" } else { "false" },
        _ => false,
    }
}

/// Whether decimal text (`42`, `-7`, `42.0`, `4.2e1`) stands for exactly the integer `n`.
/// Not through f64: there, integers past 2^53 that differ compare equal, and a header could
/// name another value than the body a worker acts on.
fn denotes_integer(text: &str, n: i128) -> bool {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => match e.parse::<i32>() {
            Ok(e) => (m, i64::from(e)),
            Err(_) => return false,
        },
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all = format!("{whole}{fraction}");
    if all.is_empty() || !all.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    // The value is `all` × 10^scale; zeros at its end only move the scale.
    let significant = all.trim_end_matches('0');
    let scale = exponent - fraction.len() as i64 + (all.len() - significant.len()) as i64;
    let significant = significant.trim_start_matches('0');
    if significant.is_empty() {
        return n == 0;
    }
    // A fraction is no integer, and 40 digits are past any i64 or u64.
    if scale < 0 || significant.len() as i64 + scale > 39 {
        return false;
    }
    let magnitude = significant
        .parse::<i128>()
        .ok()
        .and_then(|m| m.checked_mul(10i128.checked_pow(scale as u32)?));
    magnitude.is_some_and(|m| if negative { -m == n } else { m == n })
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
mod props;

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

    /// Found by `props::a_header_for_another_integer_disagrees`: compared through f64, these
    /// two integers agreed, so a proxy could route on one value while the worker got another.
    #[test]
    fn integers_compare_exactly() {
        assert!(!agrees(
            &json!(-2018767689328943235i64),
            "-2018767689328943234"
        ));
        assert!(!agrees(&json!(9007199254740993u64), "9007199254740992"));
        for same in ["42", "42.0", "+42", " 42 ", "4.2e1", "420e-1", "0.042E3"] {
            assert!(agrees(&json!(42), same), "{same}");
        }
        for other in [
            "42.5", "4.25e1", "42e400", "4e", "", "-", ".", "0x2a", "42e-1",
        ] {
            assert!(!agrees(&json!(42), other), "{other}");
        }
        assert!(agrees(&json!(0), "-0.000"));
        assert!(agrees(&json!(u64::MAX), &u64::MAX.to_string()));
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
