//! JSON-RPC framing: reading one message from a request body, and writing responses.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::wire::McpError;

/// One client message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Request(Request),
    Notification(Request),
    /// The client answering a server request (session lane): the whole message.
    Response(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Absent for notifications. Only strings and numbers are valid ids.
    pub id: Value,
    pub method: String,
    /// `Value::Null` when the message has no params.
    pub params: Value,
}

impl Request {
    /// `params._meta.<key>`.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.params.get("_meta").and_then(|m| m.get(key))
    }
}

/// Parses a body that has already passed the size limit.
pub fn parse(body: &[u8], max_depth: usize) -> Result<Incoming, McpError> {
    if exceeds_depth(body, max_depth) {
        return Err(McpError::parse(format!(
            "Parse error: JSON nested deeper than {max_depth} levels"
        )));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| McpError::parse(format!("Parse error: {e}")))?;
    let obj =
        match value {
            Value::Object(obj) => obj,
            Value::Array(_) => return Err(McpError::invalid_request(
                "Invalid Request: JSON-RPC batches are not supported; send one message per POST",
            )),
            _ => {
                return Err(McpError::invalid_request(
                    "Invalid Request: expected a JSON-RPC object",
                ))
            }
        };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(McpError::invalid_request(
            "Invalid Request: \"jsonrpc\" must be \"2.0\"",
        ));
    }
    let id = obj.get("id").cloned();
    if let Some(id) = &id {
        if !(id.is_string() || id.is_i64() || id.is_u64()) {
            return Err(McpError::invalid_request(
                "Invalid Request: \"id\" must be a string or an integer",
            ));
        }
    }
    match obj.get("method") {
        Some(Value::String(method)) => {
            let params = obj.get("params").cloned().unwrap_or(Value::Null);
            if !(params.is_object() || params.is_null()) {
                return Err(McpError::invalid_request(
                    "Invalid Request: \"params\" must be an object",
                ));
            }
            let request = Request {
                id: id.clone().unwrap_or(Value::Null),
                method: method.clone(),
                params,
            };
            Ok(match id {
                Some(_) => Incoming::Request(request),
                None => Incoming::Notification(request),
            })
        }
        Some(_) => Err(McpError::invalid_request(
            "Invalid Request: \"method\" must be a string",
        )),
        None if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) => {
            Ok(Incoming::Response(Value::Object(obj)))
        }
        None => Err(McpError::invalid_request("Invalid Request: no \"method\"")),
    }
}

/// Whether the JSON text nests arrays/objects deeper than `max`. A linear scan that skips
/// strings, run before parsing so that hostile nesting never reaches the recursive parser.
fn exceeds_depth(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A JSON-RPC success response body.
pub fn result_message(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A JSON-RPC error response body. `id` is `null` when the request's id is unknown.
pub fn error_message(id: &Value, error: &McpError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error.to_object()})
}

/// A JSON-RPC notification body.
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub fn error_response(id: &Value, error: &McpError) -> Response {
    let mut response = json_response(error.status, &error_message(id, error));
    if let Some(secs) = error.retry_after {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, secs.into());
    }
    response
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let r = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, 64).unwrap();
        assert!(matches!(r, Incoming::Request(ref q) if q.method == "ping" && q.id == json!(1)));
        let n = parse(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            64,
        )
        .unwrap();
        assert!(matches!(n, Incoming::Notification(_)));
        let a = parse(br#"{"jsonrpc":"2.0","id":"s1","result":{}}"#, 64).unwrap();
        assert!(matches!(a, Incoming::Response(ref m) if m["id"] == "s1"));
    }

    #[test]
    fn malformed_messages_get_the_right_codes() {
        assert_eq!(parse(b"{nope", 64).unwrap_err().code, -32700);
        assert_eq!(parse(b"[]", 64).unwrap_err().code, -32600);
        assert_eq!(
            parse(br#"{"id":1,"method":"x"}"#, 64).unwrap_err().code,
            -32600
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#, 64)
                .unwrap_err()
                .code,
            -32600
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#, 64)
                .unwrap_err()
                .code,
            -32600
        );
        for e in [
            parse(b"{nope", 64).unwrap_err(),
            parse(b"[]", 64).unwrap_err(),
        ] {
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }

    /// Found by `props::well_formed_messages_read_back_exactly`: without serde_json's
    /// `float_roundtrip` the gateway read this float one unit in the last place off, and
    /// passed the changed value on to the worker.
    #[test]
    fn floats_in_params_are_read_exactly() {
        let params = json!({"": [{"protocol": -8.249317252165415e+112}]});
        let body = json!({"jsonrpc": "2.0", "method": "", "params": params}).to_string();
        let Incoming::Notification(r) = parse(body.as_bytes(), 64).unwrap() else {
            panic!("a notification")
        };
        assert_eq!(r.params, params);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(deep.as_bytes(), 64).unwrap_err().code, -32700);
        // Brackets inside strings do not count.
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"s":"{}"}}}}"#,
            "[".repeat(500)
        );
        assert!(parse(body.as_bytes(), 8).is_ok());
        assert!(exceeds_depth(b"[[[", 2));
        assert!(!exceeds_depth(br#"["\"[[["]"#, 1));
    }
}
