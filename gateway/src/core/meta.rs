//! Reading `params._meta`, for the request and for the caller built from it.

use serde_json::Value;

/// `params._meta.<key>` of a message's params.
pub fn meta_of<'a>(params: &'a Value, key: &str) -> Option<&'a Value> {
    params.get("_meta").and_then(|m| m.get(key))
}
