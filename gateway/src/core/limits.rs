//! Caps on what a client can make the cluster store or hold on its behalf, checked where a
//! request is parsed. Each bounds something that outlives the request: a session record
//! (kept 24 h), a call's stored `open` record (its request id and progress token, kept with
//! the call's events), a task record, or a long-lived stream's filter in gateway memory.
//! The body limit (`--max-body-bytes`) bounds a request as a whole; these bound the parts
//! that are kept.

use std::io::Write;

use serde_json::Value;

/// `clientInfo` plus `capabilities` at `initialize`, serialized: stored in the session
/// record for the session's life. Real clients send well under 2 KiB.
pub const MAX_CLIENT_DECLARATION_BYTES: usize = 16 * 1024;
/// A JSON-RPC request id, serialized: stored with every session-lane call and echoed on
/// every message of its stream. SDKs use small integers or UUIDs.
pub const MAX_REQUEST_ID_BYTES: usize = 256;
/// `_meta.progressToken`, serialized: stored and echoed like the request id.
pub const MAX_PROGRESS_TOKEN_BYTES: usize = 256;
/// Resource URIs one session subscribes to, or one listen stream follows.
pub const MAX_RESOURCE_SUBSCRIPTIONS: usize = 256;
/// One resource URI kept in a subscription.
pub const MAX_URI_BYTES: usize = 2048;
/// A list cursor: ours name the last entry of a page, which is a tool, resource or prompt
/// name or URI.
pub const MAX_CURSOR_BYTES: usize = 4096;
/// `inputResponses` of `tasks/update`, serialized: stored in the task record until the next
/// round starts.
pub const MAX_INPUT_RESPONSES_BYTES: usize = 256 * 1024;

/// What was too large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    RequestId,
    ProgressToken,
    ClientDeclaration,
    ResourceSubscriptions,
    Uri,
    Cursor,
    InputResponses,
}

impl Limited {
    /// The limit, in bytes or (subscriptions) entries.
    pub fn limit(self) -> usize {
        match self {
            Self::RequestId => MAX_REQUEST_ID_BYTES,
            Self::ProgressToken => MAX_PROGRESS_TOKEN_BYTES,
            Self::ClientDeclaration => MAX_CLIENT_DECLARATION_BYTES,
            Self::ResourceSubscriptions => MAX_RESOURCE_SUBSCRIPTIONS,
            Self::Uri => MAX_URI_BYTES,
            Self::Cursor => MAX_CURSOR_BYTES,
            Self::InputResponses => MAX_INPUT_RESPONSES_BYTES,
        }
    }

    /// How the limit reads in an error message.
    pub fn describe(self) -> String {
        let limit = self.limit();
        match self {
            Self::RequestId => format!("the request id is longer than {limit} bytes"),
            Self::ProgressToken => format!("_meta.progressToken is longer than {limit} bytes"),
            Self::ClientDeclaration => {
                format!("clientInfo and capabilities together are larger than {limit} bytes")
            }
            Self::ResourceSubscriptions => {
                format!("more than {limit} resource subscriptions")
            }
            Self::Uri => format!("a resource URI is longer than {limit} bytes"),
            Self::Cursor => format!("the cursor is longer than {limit} bytes"),
            Self::InputResponses => format!("inputResponses are larger than {limit} bytes"),
        }
    }

    /// A stable name for `error.data.limit` and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::RequestId => "request_id_bytes",
            Self::ProgressToken => "progress_token_bytes",
            Self::ClientDeclaration => "client_declaration_bytes",
            Self::ResourceSubscriptions => "resource_subscriptions",
            Self::Uri => "uri_bytes",
            Self::Cursor => "cursor_bytes",
            Self::InputResponses => "input_responses_bytes",
        }
    }

    /// `Err(self)` when `size` is over the limit.
    pub fn check(self, size: usize) -> Result<(), Limited> {
        if size > self.limit() {
            Err(self)
        } else {
            Ok(())
        }
    }

    /// Checks the serialized size of `values`, together.
    pub fn check_json(self, values: &[&Value]) -> Result<(), Limited> {
        self.check(values.iter().map(|v| json_len(v)).sum())
    }
}

/// The serialized length of `value`, without building the string.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_are_the_serialized_json() {
        assert_eq!(json_len(&json!("ab")), 4);
        assert_eq!(json_len(&json!({"a": 1})), 7);
        assert!(Limited::RequestId.check_json(&[&json!(7)]).is_ok());
        let long = json!("x".repeat(MAX_REQUEST_ID_BYTES));
        assert_eq!(
            Limited::RequestId.check_json(&[&long]),
            Err(Limited::RequestId)
        );
    }
}
