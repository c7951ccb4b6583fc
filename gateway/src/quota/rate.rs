//! Token buckets per client (`governor`, GCRA): request rate and new sessions per minute.
//!
//! The map of buckets is keyed by client, so its size is bounded too: buckets that have
//! refilled are dropped every minute (`retain_recent`), and once [`MAX_TRACKED`] clients are
//! tracked, further ones share one bucket, which only ever makes the gateway stricter. (An
//! IPv6 client counts as its /64, see `client.rs`, so filling the map takes that many
//! distinct networks, not one host's addresses.)

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::client::ClientKey;

/// Distinct clients with a bucket of their own at once (a few hundred bytes each).
pub const MAX_TRACKED: usize = 100_000;

const OVERFLOW: &str = "overflow";

/// One token bucket per client.
pub struct Buckets {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl Buckets {
    /// `burst` tokens, refilled at `per_period` every `period`.
    pub fn new(per_period: NonZeroU32, period: Duration, burst: NonZeroU32) -> Self {
        let quota = Quota::with_period(period / per_period.get())
            .expect("a non-zero period")
            .allow_burst(burst);
        Self {
            limiter: RateLimiter::dashmap(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Takes a token for `client`, or says how long until one is available.
    pub fn take(&self, client: &ClientKey) -> Result<(), Duration> {
        let mut key = client.as_str();
        if self.limiter.len() >= MAX_TRACKED {
            key = OVERFLOW;
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets clients whose bucket is full again (called periodically).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str) -> ClientKey {
        ClientKey::of(
            None,
            format!("{name}:1").parse().ok(),
            &Default::default(),
            &[],
        )
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_and_others_are_unaffected() {
        let nz = |n| NonZeroU32::new(n).unwrap();
        let b = Buckets::new(nz(1), Duration::from_secs(60), nz(3));
        let a = client("192.0.2.1");
        for _ in 0..3 {
            assert!(b.take(&a).is_ok());
        }
        let wait = b.take(&a).unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(b.take(&client("192.0.2.2")).is_ok());
        assert_eq!(b.tracked(), 2);
    }
}
