//! A `taskId` comes from the client and becomes a KV key and a subject token: every id we
//! generate is accepted, and anything accepted is safe as either.

use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn generated_task_ids_are_accepted(bytes in any::<[u8; 16]>()) {
        // `tasks/service.rs` makes ids as a UUID in simple form: 32 hex digits.
        let id = uuid::Uuid::from_bytes(bytes).simple().to_string();
        prop_assert!(valid_task_id(&id));
    }

    #[test]
    fn accepted_ids_are_safe_keys_and_tokens(
        id in prop_oneof![any::<String>(), "[A-Za-z0-9.*> _/=-]{0,70}"]
    ) {
        if valid_task_id(&id) {
            // NATS KV keys allow `[-/_=.A-Za-z0-9]`; a `.` would add a subject token (and
            // `*`, `>` a wildcard), which one id must never do.
            let key_safe = |b: u8| b.is_ascii_alphanumeric() || b"-/_=".contains(&b);
            prop_assert!(!id.is_empty() && id.bytes().all(key_safe), "{id:?}");
        }
    }
}
