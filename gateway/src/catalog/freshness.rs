//! How far a registry watch is known to be complete (issue 15).
//!
//! A KV watch is an ordered push consumer. When the NATS server holding it dies, the watch
//! goes quiet until the client notices missed idle heartbeats and it is re-created: seconds
//! during which workers keep beating but the gateway hears nothing. Expiring workers by the
//! wall clock then drops live ones (measured: 5 % of calls answered `no_worker` while one of
//! three NATS nodes was down). So expiry is judged at the last instant the watch was *shown*
//! complete instead: the gateway asks the server for the bucket's last sequence, and once the
//! watch has delivered that sequence, everything written before the question has reached us.
//! A watch that does not catch up within [`STALL_AFTER`] is declared stalled and re-made.
//!
//! While nothing can be shown (the bucket's stream has no leader: no question is answered,
//! and no beat can be written either), the clock stops. When it starts again, the time it
//! stood is a *gap* that no worker could have beaten in: [`Freshness::take_gap`] hands it to
//! the registry, which forgives every instance that much silence (ADR 0031). Otherwise a
//! worker would be expired the instant the clock jumped forward, before its first beat
//! after the election could land.

use std::time::{Duration, Instant};

/// How far the verified instant normally moves at a time: one sweep. A longer step is a
/// gap in which the bucket could not be shown complete.
const STEP: Duration = crate::catalog::SWEEP_INTERVAL;

/// Steps up to this long are the sweep's ordinary jitter, not a gap.
const GAP_AFTER: Duration = Duration::from_millis(2500);

/// How long the watch may stay behind a sequence the server reported before it counts as
/// stalled. Entries normally arrive within milliseconds; a few seconds covers a busy
/// gateway without waiting for the client's own heartbeat detection.
pub const STALL_AFTER: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub struct Freshness {
    /// The bucket's last sequence as the server reported it, and when we asked, while the
    /// watch has not delivered it yet.
    pending: Option<(u64, Instant)>,
    /// Every entry written before this instant has been applied.
    verified: Instant,
    /// The highest revision the watch delivered.
    seen: u64,
    /// Unverified time not yet handed to the registry.
    gap: Duration,
}

impl Freshness {
    /// A new watch, complete up to `verified` (what the previous watch had shown).
    pub fn new(verified: Instant) -> Self {
        Self {
            pending: None,
            verified,
            seen: 0,
            gap: Duration::ZERO,
        }
    }

    /// The watch delivered `revision`.
    pub fn seen(&mut self, revision: u64) {
        self.seen = self.seen.max(revision);
        if let Some((last, asked)) = self.pending {
            if self.seen >= last {
                self.advance(asked);
                self.pending = None;
            }
        }
    }

    /// The watch replayed the bucket's history that existed at `started`.
    pub fn caught_up(&mut self, started: Instant) {
        self.advance(started);
    }

    fn advance(&mut self, to: Instant) {
        let step = to.saturating_duration_since(self.verified);
        if step > GAP_AFTER {
            self.gap += step - STEP;
        }
        self.verified = self.verified.max(to);
    }

    /// The unverified time since the last call, if the clock stood still for a while: the
    /// silence to forgive every worker.
    pub fn take_gap(&mut self) -> Option<Duration> {
        Some(std::mem::take(&mut self.gap)).filter(|g| !g.is_zero())
    }

    /// Whether to ask the server for the bucket's last sequence now.
    pub fn wants_check(&self) -> bool {
        self.pending.is_none()
    }

    /// The server said the bucket's last sequence was `last` when asked at `asked`.
    pub fn server_sequence(&mut self, last: u64, asked: Instant) {
        self.pending = Some((last, asked));
        self.seen(self.seen);
    }

    /// Every entry written before this instant has been applied: the time to judge expiry by.
    pub fn verified(&self) -> Instant {
        self.verified
    }

    /// Whether the watch has stayed behind a reported sequence for longer than [`STALL_AFTER`].
    pub fn stalled(&self, now: Instant) -> bool {
        self.pending
            .is_some_and(|(_, asked)| now.saturating_duration_since(asked) > STALL_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_that_delivers_the_reported_sequence_is_verified_up_to_the_question() {
        let t0 = Instant::now();
        let mut f = Freshness::new(t0);
        f.seen(5);
        let asked = t0 + Duration::from_secs(1);
        f.server_sequence(7, asked);
        assert_eq!(f.verified(), t0, "not yet: 6 and 7 are on their way");
        f.seen(7);
        assert_eq!(f.verified(), asked);
        assert!(f.wants_check());
    }

    #[test]
    fn a_watch_already_past_the_reported_sequence_is_verified_at_once() {
        let t0 = Instant::now();
        let mut f = Freshness::new(t0);
        f.seen(9);
        let asked = t0 + Duration::from_secs(2);
        f.server_sequence(9, asked);
        assert_eq!(f.verified(), asked);
        assert!(!f.stalled(asked + STALL_AFTER * 2));
    }

    #[test]
    fn a_silent_watch_stops_the_clock_and_is_declared_stalled() {
        let t0 = Instant::now();
        let mut f = Freshness::new(t0);
        f.seen(3);
        f.server_sequence(10, t0 + Duration::from_secs(1));
        assert!(!f.wants_check());
        assert!(!f.stalled(t0 + Duration::from_secs(2)));
        assert!(f.stalled(t0 + Duration::from_secs(1) + STALL_AFTER + Duration::from_millis(1)));
        assert_eq!(
            f.verified(),
            t0,
            "expiry is judged as of before the silence"
        );
    }

    #[test]
    fn a_clock_that_stood_still_hands_over_the_gap_once() {
        let t0 = Instant::now();
        let mut f = Freshness::new(t0);
        f.seen(3);
        f.server_sequence(3, t0 + Duration::from_secs(1));
        assert_eq!(f.take_gap(), None, "an ordinary step is no gap");
        // No answer for six seconds (an election), then the server answers again.
        f.server_sequence(4, t0 + Duration::from_secs(7));
        f.seen(4);
        assert_eq!(f.take_gap(), Some(Duration::from_secs(5)));
        assert_eq!(f.take_gap(), None, "handed over once");
    }

    #[test]
    fn a_new_watch_keeps_the_previous_verified_instant_until_it_has_replayed() {
        let t0 = Instant::now();
        let f = Freshness::new(t0);
        assert_eq!(f.verified(), t0);
        let mut f = f;
        let started = t0 + Duration::from_secs(5);
        f.caught_up(started);
        assert_eq!(f.verified(), started);
    }
}
