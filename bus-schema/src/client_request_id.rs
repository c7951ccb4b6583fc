//! The JSON-RPC id of a request a worker sends to the client (sampling, elicitation, roots):
//! `mcpbus:<call id>:<seq>`. It names the call and the request's number, so whichever gateway
//! receives the client's answer knows where to publish it without a lookup. A cluster
//! contract: the gateway that writes it and the gateway that reads it may differ.

/// The id of request `seq` of call `call_id`.
pub fn format(call_id: &str, seq: u32) -> String {
    format!("{PREFIX}{call_id}:{seq}")
}

/// The call and request number of an id made by [`format`]; `None` for anything else.
pub fn parse(id: &str) -> Option<(&str, u32)> {
    let rest = id.strip_prefix(PREFIX)?;
    let (call, seq) = rest.split_once(':')?;
    let valid = !call.is_empty() && call.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then_some((call, seq.parse().ok()?))
}

const PREFIX: &str = "mcpbus:";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_foreign_ones() {
        assert_eq!(parse(&format("abc123", 4)), Some(("abc123", 4)));
        for bad in [
            "",
            "mcpbus:",
            "mcpbus::1",
            "mcpbus:a.b:1",
            "mcpbus:a:x",
            "x:a:1",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
