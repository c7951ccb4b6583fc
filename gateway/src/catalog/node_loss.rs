//! Patience with workers while a NATS node is missing (issue 15).
//!
//! A worker whose NATS server freezes (a stalled VM, SIGSTOP) keeps its socket open: it
//! stores no beat until its client notices unanswered pings and reaches another seed, up to
//! [`LEAVE_LOST_SERVER`] later. The rest of the cluster meanwhile elects new leaders and
//! keeps answering this gateway, so the verified clock ([`super::freshness`]) runs on, and a
//! live worker would be expired at its TTL (6 s by default): measured, `no_worker` for up
//! to 60 % of calls while the worker's own server was frozen.
//!
//! The stream info the gateway asks for once a second anyway says whether a replica of the
//! workers bucket is missing: offline, or not heard from by the leader for
//! [`MISSING_AFTER`] (a healthy follower is heard from within milliseconds; nats-server
//! 2.9 flags a frozen one `current: false` only after 10 s). While one is, and for
//! [`GRACE`] after, every instance may stay silent [`GRACE`] past its TTL: long enough to
//! move to another server and store a beat there. Never for longer than [`GRACE_FOR`] from
//! the first miss: by then every client has moved, and a node lost for good must not slow
//! the exit of workers that die later.
//!
//! Cost: a worker that dies while a node is missing leaves up to [`GRACE`] later; calls
//! meanwhile wait in its pool's queue for another replica or their deadline.

use std::time::{Duration, Instant};

use async_nats::jetstream::stream;
use bus_schema::connect::LEAVE_LOST_SERVER;
use bus_schema::failover::ATTEMPT_TIMEOUT;

/// A replica the leader has not heard from for this long is missing.
const MISSING_AFTER: Duration = Duration::from_secs(3);

/// Extra silence allowed while a node is missing: leaving it, then one store attempt for the
/// beat (the one in flight on the lost connection times out first).
pub const GRACE: Duration =
    Duration::from_secs(LEAVE_LOST_SERVER.as_secs() + ATTEMPT_TIMEOUT.as_secs());

/// The longest one loss earns patience, from the first time the node was missed.
const GRACE_FOR: Duration = Duration::from_secs(30);

/// Whether a replica of the stream `info` describes is missing (see the module's notes).
/// Without cluster information (a single server) none is.
pub fn replica_missing(info: &stream::Info) -> bool {
    info.cluster
        .as_ref()
        .is_some_and(|c| any_missing(&c.replicas))
}

fn any_missing(replicas: &[stream::PeerInfo]) -> bool {
    replicas
        .iter()
        .any(|r| r.offline || r.active > MISSING_AFTER)
}

/// The current spell of a missing node, if any.
#[derive(Debug, Default)]
pub struct NodeLoss {
    /// When a replica was first, and last, seen missing in this spell.
    spell: Option<(Instant, Instant)>,
}

impl NodeLoss {
    /// What the bucket's stream info said at `now`.
    pub fn observe(&mut self, missing: bool, now: Instant) {
        match self.spell {
            _ if missing => {
                let first = self.spell.map_or(now, |(first, _)| first);
                self.spell = Some((first, now));
            }
            Some((_, last)) if now.saturating_duration_since(last) > GRACE => self.spell = None,
            _ => {}
        }
    }

    /// How much silence past its TTL every instance is allowed at `now`.
    pub fn grace(&self, now: Instant) -> Duration {
        match self.spell {
            Some((first, last))
                if now.saturating_duration_since(first) < GRACE_FOR
                    && now.saturating_duration_since(last) <= GRACE =>
            {
                GRACE
            }
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replicas as nats-server 2.9 reports them in a stream info's `cluster`.
    fn info(replicas: serde_json::Value) -> Vec<stream::PeerInfo> {
        serde_json::from_value(replicas).expect("replicas as nats-server 2.9 sends them")
    }

    #[test]
    fn a_replica_unheard_for_seconds_or_offline_is_missing() {
        // As nats-server 2.9 reported a follower 4 s into a SIGSTOP: still `current`.
        let frozen = info(serde_json::json!([
            {"name": "n1", "current": true, "active": 4_008_212_713u64, "peer": "a"},
            {"name": "n3", "current": true, "active": 8_545_525u64, "peer": "b"}
        ]));
        assert!(any_missing(&frozen));
        let offline = info(serde_json::json!([
            {"name": "n1", "current": false, "active": 0, "offline": true, "peer": "a"}
        ]));
        assert!(any_missing(&offline));
        let healthy = info(serde_json::json!([
            {"name": "n1", "current": true, "active": 27_633_500u64, "peer": "a"},
            {"name": "n3", "current": true, "active": 27_642_948u64, "peer": "b"}
        ]));
        assert!(!any_missing(&healthy));
    }

    #[test]
    fn patience_lasts_while_a_node_is_missing_and_a_grace_after() {
        let t0 = Instant::now();
        let mut n = NodeLoss::default();
        assert_eq!(n.grace(t0), Duration::ZERO);
        n.observe(true, t0);
        n.observe(true, t0 + Duration::from_secs(10));
        assert_eq!(n.grace(t0 + Duration::from_secs(10)), GRACE);
        // Back at 11 s: workers still moving keep their patience for a grace.
        n.observe(false, t0 + Duration::from_secs(11));
        assert_eq!(n.grace(t0 + Duration::from_secs(11)), GRACE);
        let after = t0 + Duration::from_secs(10) + GRACE + Duration::from_millis(1);
        n.observe(false, after);
        assert_eq!(n.grace(after), Duration::ZERO);
        // A later loss is a new spell.
        n.observe(true, after + Duration::from_secs(60));
        assert_eq!(n.grace(after + Duration::from_secs(60)), GRACE);
    }

    #[test]
    fn a_node_lost_for_good_earns_patience_once() {
        let t0 = Instant::now();
        let mut n = NodeLoss::default();
        for s in 0..=40 {
            n.observe(true, t0 + Duration::from_secs(s));
        }
        assert_eq!(n.grace(t0 + Duration::from_secs(29)), GRACE);
        assert_eq!(n.grace(t0 + Duration::from_secs(40)), Duration::ZERO);
    }
}
