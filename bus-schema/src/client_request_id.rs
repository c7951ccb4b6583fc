//! The JSON-RPC id of a request a worker sends to the client (sampling, elicitation, roots):
//! `mcpbus:<pool>:<call id>:<seq>`. It names the call, the pool running it and the request's
//! number, so whichever gateway receives the client's answer knows where to publish it
//! without a lookup. A cluster contract: the gateway that writes it and the gateway that
//! reads it may differ.

use crate::names::PoolName;

/// The id of request `seq` of call `call_id`, running in `pool`.
pub fn format(pool: &PoolName, call_id: &str, seq: u32) -> String {
    format!("{PREFIX}{pool}:{call_id}:{seq}")
}

/// The pool, call and request number of an id made by [`format`]; `None` for anything else.
pub fn parse(id: &str) -> Option<(PoolName, &str, u32)> {
    let rest = id.strip_prefix(PREFIX)?;
    let mut parts = rest.split(':');
    let (pool, call, seq) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = parts.next().is_none()
        && !call.is_empty()
        && call.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then_some((PoolName::new(pool).ok()?, call, seq.parse().ok()?))
}

const PREFIX: &str = "mcpbus:";

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_foreign_ones() {
        let pool = PoolName::new("demo").unwrap();
        assert_eq!(
            parse(&format(&pool, "abc123", 4)),
            Some((pool, "abc123", 4))
        );
        for bad in [
            "",
            "mcpbus:",
            "mcpbus:demo::1",
            "mcpbus:demo:a.b:1",
            "mcpbus:demo:a:x",
            "mcpbus:de.mo:a:1",
            "mcpbus:a:1",
            "mcpbus:demo:a:1:2",
            "x:demo:a:1",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
