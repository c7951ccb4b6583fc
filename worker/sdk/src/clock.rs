//! Wall-clock time in Unix milliseconds: the unit of every deadline on the bus
//! (`CallRequest::deadline_ms`), so that a worker and the gateway that queued a call compare
//! the same numbers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds (0 if the clock reads before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How long until `deadline_ms`; zero once it has passed.
pub(crate) fn until(deadline_ms: u64) -> Duration {
    Duration::from_millis(deadline_ms.saturating_sub(now_ms()))
}
