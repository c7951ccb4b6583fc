//! `MCP-Session-Id` comes from any client and is looked up as a KV key as it is: every id
//! we generate is accepted back, and anything accepted is a safe key.

use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn generated_ids_parse_back(_run in any::<u8>()) {
        let id = SessionId::generate();
        prop_assert_eq!(SessionId::parse(id.as_str()), Some(id));
    }

    #[test]
    fn accepted_ids_are_safe_keys(raw in prop_oneof![any::<String>(), "[A-Za-z0-9.*> _/=-]{0,140}"]) {
        if let Some(id) = SessionId::parse(&raw) {
            // NATS KV keys allow `[-/_=.A-Za-z0-9]`; a `.` would add a subject token and
            // `*`, `>` a wildcard. Visible ASCII, as the spec requires of session ids.
            let key_safe = |b: u8| b.is_ascii_alphanumeric() || b"-/_=".contains(&b);
            prop_assert!(!id.as_str().is_empty() && id.as_str().bytes().all(key_safe), "{raw:?}");
            prop_assert!(id.as_str().len() <= 128);
        }
    }
}
