//! A task moves on from the last event a worker stored, which may be anything: whatever
//! the bytes, `advance` never panics, and it changes the record exactly when it says so,
//! always out of `working`.

use bus_schema::strategies::reply_bytes;
use proptest::prelude::*;

use super::tests::working;
use super::*;

proptest! {
    #[test]
    fn any_stored_event_moves_a_task_on_or_leaves_it(
        last in prop::option::of(reply_bytes()),
        now_ms in prop_oneof![Just(2_000u64), any::<u64>()],
        session in any::<bool>(),
    ) {
        let mut record = working();
        if session {
            record.session = Some("s".into());
        }
        let before = record.clone();
        let _ = is_pending_question(last.as_deref().unwrap_or_default());
        if advance(&mut record, last.as_deref(), now_ms) {
            prop_assert_ne!(record.status, TaskStatus::Working);
            prop_assert_eq!(record.updated_ms, now_ms);
        } else {
            prop_assert_eq!(record, before);
        }
    }
}
