//! A client's answer carries back an id it may have altered: it must parse to nothing or to
//! a pool and call that are safe subject tokens, and every id we format must parse back.

use proptest::prelude::*;

use super::{format, parse};
use crate::names::PoolName;

fn pool() -> impl Strategy<Value = PoolName> {
    "[A-Za-z0-9_-]{1,64}".prop_map(|p| PoolName::new(p).expect("a valid pool name"))
}

/// Text close to an id: our prefix, then colon-joined pieces of any kind.
fn near_id() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9_-]{1,70}",
        "[+-]?[0-9]{1,12}",
        "[.*> ]",
        any::<String>(),
    ];
    (any::<bool>(), prop::collection::vec(piece, 0..6)).prop_map(|(prefixed, pieces)| {
        let body = pieces.join(":");
        if prefixed {
            format!("mcpbus:{body}")
        } else {
            body
        }
    })
}

proptest! {
    #[test]
    fn formatted_ids_round_trip(pool in pool(), call in "[A-Za-z0-9]{1,40}", seq in any::<u32>()) {
        let id = format(&pool, &call, seq);
        prop_assert_eq!(parse(&id), Some((pool, call.as_str(), seq)));
    }

    /// The pool and call an id names become subject tokens: whatever parses holds no `.`,
    /// wildcard or space, and formats back to an id naming the same request.
    #[test]
    fn anything_parses_to_nothing_or_to_safe_tokens(
        raw in prop_oneof![any::<String>(), near_id()]
    ) {
        if let Some((pool, call, seq)) = parse(&raw) {
            let safe = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            prop_assert!(safe(pool.as_str()) && safe(call));
            let again = format(&pool, call, seq);
            prop_assert_eq!(parse(&again), Some((pool.clone(), call, seq)));
        }
    }
}
