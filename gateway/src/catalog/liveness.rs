//! Noticing a dead worker within about a second, without heartbeating faster (ADR 0029).
//!
//! A worker that says so in its record (`WorkerRecord::alive_subscription`) holds a
//! subscription on its own alive subject for as long as its NATS connection lives. The
//! gateway publishes an empty probe there, with a reply subject in its own inbox. While the
//! instance's connection lives nothing comes back (the worker answers nothing). Once the
//! server has dropped the connection (a kill -9 closes the socket, and the server removes its
//! subscriptions at once), the server itself answers the probe "503 no responders".
//! Only that answer counts: a lost probe, a permission refusal or a slow bus leave the
//! instance to its TTL, as before. The proof comes from the server, never from a worker, so a
//! worker cannot make another disappear.
//!
//! A second probe a moment later confirms the first (interest crosses a NATS cluster's
//! routes asynchronously, so a worker that has just started could be missed once). Then the
//! gateway drops the instance from its own registry, as its TTL expiry would: each gateway
//! probes and decides for itself, within the same second, and none writes the workers
//! bucket (its permissions keep it from registering workers, ADR 0013). The verdict holds
//! only for the revision probed: a beat in the meantime voids it, and a beat after it brings
//! the instance back as a new one.
//!
//! Cost: one small core-NATS message per instance per second from each gateway, nothing
//! stored, nothing answered. Cap: [`MAX_PROBES_PER_SECOND`] per gateway whatever the number
//! of records (a pool may write many): past it, each instance is probed less often and the
//! leave time grows towards the TTL.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::time::Duration;

use bus_schema::messages::WorkerRecord;
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::subjects;
use bytes::Bytes;
use tokio::time::Instant;

/// How often probes go out; each tick sends a share of the round.
pub const PROBE_TICK: Duration = Duration::from_millis(100);

/// Each instance is probed once per this long, while the cap allows.
const ROUND: Duration = Duration::from_secs(1);

/// The most first probes one gateway sends per second; past it, rounds take longer.
/// Confirmations, which only follow a "no responders", add at most as many.
pub const MAX_PROBES_PER_SECOND: usize = 500;

/// How long after a "no responders" the confirming probe goes out. Long enough for a worker
/// whose NATS server died to reconnect to another and re-subscribe (tens of milliseconds
/// on loopback, issue 15), and for that interest to cross the cluster's routes.
const CONFIRM_AFTER: Duration = Duration::from_millis(500);

/// Stages of a probe, as named in its reply subject.
const FIRST: &str = "p";
const CONFIRM: &str = "c";

/// An instance to probe: the pool and instance its key names, and the revision of its last
/// beat.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    pool: PoolName,
    instance: InstanceId,
    revision: u64,
}

/// What to do with a probe's answer.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Nothing: the instance is alive, unknown, or already handled.
    Nothing,
    /// The first probe found no subscriber: a confirmation is scheduled.
    Confirming,
    /// Confirmed gone at the revision probed: drop this key.
    Gone { key: String },
}

/// The probing schedule of one gateway. Pure state: the watcher feeds it records, ticks and
/// answers, and sends what it returns.
#[derive(Debug, Default)]
pub struct Liveness {
    targets: BTreeMap<String, Target>,
    /// The last key probed: the next tick continues after it.
    cursor: Option<String>,
    /// Keys whose first probe found no subscriber: when to confirm, at which revision.
    confirm: HashMap<String, (Instant, u64)>,
    /// First probes owed, in tenths (ticks per round) of a probe: every tick adds one per
    /// instance, so that fewer instances than ticks in a round are still probed once a
    /// round, not once a tick.
    credit: usize,
}

/// One probe to send.
#[derive(Debug, PartialEq)]
pub struct Probe {
    pub subject: String,
    pub reply: String,
}

impl Liveness {
    /// A worker record was put under `key` at `revision`. Only a record whose key names its
    /// own pool and instance is probed (the key is what NATS permissions confine a worker to).
    pub fn track(&mut self, key: &str, record: &WorkerRecord, revision: u64) {
        let own_key = subjects::worker_key(&record.pool, &record.instance) == key;
        if record.alive_subscription && own_key {
            let target = Target {
                pool: record.pool.clone(),
                instance: record.instance.clone(),
                revision,
            };
            self.targets.insert(key.to_owned(), target);
        } else {
            self.forget(key);
        }
        self.confirm.remove(key);
    }

    /// The record under `key` is gone (deleted, or expired).
    pub fn forget(&mut self, key: &str) {
        self.targets.remove(key);
        self.confirm.remove(key);
    }

    /// Keeps only the keys `live` still holds (the registry's expiry).
    pub fn retain(&mut self, live: impl Fn(&str) -> bool) {
        self.targets.retain(|k, _| live(k));
        self.confirm.retain(|k, _| live(k));
    }

    /// How many instances are probed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The probes of one tick at `now`: due confirmations, then the next share of the round.
    pub fn tick(&mut self, gateway: &InstanceId, now: Instant) -> Vec<Probe> {
        let mut probes = Vec::new();
        let due: Vec<String> = self
            .confirm
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, _)| k.clone())
            .take(per_tick(usize::MAX))
            .collect();
        for key in due {
            let (_, revision) = self.confirm.remove(&key).expect("listed above");
            if let Some(t) = self.targets.get(&key).filter(|t| t.revision == revision) {
                probes.push(t.probe(gateway, CONFIRM));
            }
        }
        let ticks_per_round = (ROUND.as_millis() / PROBE_TICK.as_millis()) as usize;
        let cap = per_tick(usize::MAX);
        self.credit = (self.credit + self.targets.len()).min(cap * ticks_per_round);
        let budget = (self.credit / ticks_per_round).min(self.targets.len());
        self.credit -= budget * ticks_per_round;
        let after = match &self.cursor {
            Some(c) => (Bound::Excluded(c.clone()), Bound::Unbounded),
            None => (Bound::Unbounded, Bound::Unbounded),
        };
        let wrapped = match &self.cursor {
            Some(c) => (Bound::Unbounded, Bound::Included(c.clone())),
            None => (Bound::Unbounded, Bound::Excluded(String::new())),
        };
        let next: Vec<(String, Probe)> = self
            .targets
            .range::<String, _>(after)
            .chain(self.targets.range::<String, _>(wrapped))
            .take(budget)
            .map(|(k, t)| (k.clone(), t.probe(gateway, FIRST)))
            .filter(|(k, _)| !self.confirm.contains_key(k))
            .collect();
        for (key, probe) in next {
            self.cursor = Some(key);
            probes.push(probe);
        }
        probes
    }

    /// The server's status answer to one of our probes (its reply subject and status).
    pub fn answered(&mut self, reply: &str, no_responders: bool, now: Instant) -> Verdict {
        if !no_responders {
            return Verdict::Nothing;
        }
        let Some((stage, revision, pool, instance)) = subjects::parse_alive_probe_reply(reply)
        else {
            return Verdict::Nothing;
        };
        let key = format!("{pool}.{instance}");
        // Only the instance as probed: a newer beat (another revision) is alive news.
        if self
            .targets
            .get(&key)
            .is_none_or(|t| t.revision != revision)
        {
            return Verdict::Nothing;
        }
        match stage {
            FIRST => {
                // A later first probe's answer must not push the confirmation back.
                self.confirm
                    .entry(key)
                    .or_insert((now + CONFIRM_AFTER, revision));
                Verdict::Confirming
            }
            CONFIRM => {
                // Probed no more; a new beat would track it again.
                self.forget(&key);
                Verdict::Gone { key }
            }
            _ => Verdict::Nothing,
        }
    }
}

impl Target {
    fn probe(&self, gateway: &InstanceId, stage: &str) -> Probe {
        Probe {
            subject: subjects::alive(&self.pool, &self.instance),
            reply: subjects::alive_probe_reply(
                gateway,
                stage,
                self.revision,
                &self.pool,
                &self.instance,
            ),
        }
    }
}

/// How many instances one tick probes when `n` are known: the round's share (rounded up),
/// capped. `per_tick(usize::MAX)` is the cap.
fn per_tick(n: usize) -> usize {
    let ticks_per_round = (ROUND.as_millis() / PROBE_TICK.as_millis()) as usize;
    let cap = MAX_PROBES_PER_SECOND * PROBE_TICK.as_millis() as usize / 1000;
    n.div_ceil(ticks_per_round).min(cap)
}

/// Sends the probes; a failure (the connection is away) only delays the verdict.
pub async fn send(nats: &async_nats::Client, probes: Vec<Probe>) {
    for p in probes {
        if let Err(e) = nats
            .publish_with_reply(p.subject, p.reply, Bytes::new())
            .await
        {
            tracing::debug!(error = %e, "liveness probe not sent");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pool: &str, inst: &str, alive: bool) -> WorkerRecord {
        WorkerRecord {
            protocol: bus_schema::PROTOCOL_VERSION,
            pool: PoolName::new(pool).unwrap(),
            instance: InstanceId::new(inst).unwrap(),
            catalog_digest: "d".into(),
            heartbeat_ms: 1000,
            ttl_ms: 3000,
            max_in_flight: 1,
            sdk: String::new(),
            registered_ms: None,
            alive_subscription: alive,
        }
    }

    fn gw() -> InstanceId {
        InstanceId::new("gw-1").unwrap()
    }

    /// Ticks from `t0` until a probe goes out: the first probe and when it went.
    fn first_probe(l: &mut Liveness, t0: Instant) -> (Probe, Instant) {
        for n in 0..100 {
            let at = t0 + PROBE_TICK * n;
            if let Some(p) = l.tick(&gw(), at).into_iter().next() {
                return (p, at);
            }
        }
        panic!("no probe in 100 ticks");
    }

    #[test]
    fn only_workers_that_hold_the_subscription_under_their_own_key_are_probed() {
        let mut l = Liveness::default();
        l.track("p.old", &record("p", "old", false), 1);
        l.track("p.w1", &record("p", "w1", true), 2);
        // A record naming another pool's instance under its own key is not probed.
        l.track("p.x", &record("q", "victim", true), 3);
        assert_eq!(l.len(), 1);
        let (probe, _) = first_probe(&mut l, Instant::now());
        let w1 = (PoolName::new("p").unwrap(), InstanceId::new("w1").unwrap());
        assert_eq!(probe.subject, subjects::alive(&w1.0, &w1.1));
    }

    #[test]
    fn one_instance_is_probed_once_a_round_not_once_a_tick() {
        let mut l = Liveness::default();
        l.track("p.w1", &record("p", "w1", true), 1);
        let t0 = Instant::now();
        let sent: usize = (0..30)
            .map(|n| l.tick(&gw(), t0 + PROBE_TICK * n).len())
            .sum();
        assert_eq!(sent, 3);
    }

    #[test]
    fn two_no_responders_at_the_probed_revision_mean_gone() {
        let mut l = Liveness::default();
        l.track("p.w1", &record("p", "w1", true), 7);
        let (first, t0) = first_probe(&mut l, Instant::now());
        assert_eq!(l.answered(&first.reply, false, t0), Verdict::Nothing);
        assert_eq!(l.answered(&first.reply, true, t0), Verdict::Confirming);
        // Another first answer does not push the confirmation back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(l.answered(&first.reply, true, t1), Verdict::Confirming);
        // Not confirmed before its time; then exactly one confirmation.
        let early = l.tick(&gw(), t0 + Duration::from_millis(100));
        assert!(early.iter().all(|p| !p.reply.contains(".alive.c.")));
        let later = l.tick(&gw(), t0 + CONFIRM_AFTER);
        let confirm: Vec<_> = later
            .iter()
            .filter(|p| p.reply.contains(".alive.c."))
            .collect();
        assert_eq!(confirm.len(), 1);
        assert_eq!(
            l.answered(&confirm[0].reply, true, t0 + CONFIRM_AFTER),
            Verdict::Gone { key: "p.w1".into() }
        );
        assert_eq!(l.len(), 0, "probed no more once judged");
    }

    #[test]
    fn a_new_beat_voids_an_answer_about_the_old_revision() {
        let mut l = Liveness::default();
        l.track("p.w1", &record("p", "w1", true), 7);
        let (first, t0) = first_probe(&mut l, Instant::now());
        l.track("p.w1", &record("p", "w1", true), 8);
        assert_eq!(l.answered(&first.reply, true, t0), Verdict::Nothing);
        // A made-up reply subject for an instance we do not probe is ignored too.
        let forged = subjects::alive_probe_reply(
            &gw(),
            CONFIRM,
            1,
            &PoolName::new("q").unwrap(),
            &InstanceId::new("z").unwrap(),
        );
        assert_eq!(l.answered(&forged, true, t0), Verdict::Nothing);
    }

    #[test]
    fn every_instance_is_probed_once_per_round() {
        let mut l = Liveness::default();
        for i in 0..25 {
            l.track(&format!("p.w{i}"), &record("p", &format!("w{i}"), true), 1);
        }
        let t0 = Instant::now();
        let ticks = (ROUND.as_millis() / PROBE_TICK.as_millis()) as u32;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for n in 0..ticks {
            for p in l.tick(&gw(), t0 + PROBE_TICK * n) {
                *seen.entry(p.subject).or_default() += 1;
            }
        }
        assert_eq!(seen.len(), 25);
        assert!(seen.values().all(|&c| c == 1), "{seen:?}");
    }

    /// The attack: a pool writes many records to make every gateway probe a lot. The rate
    /// stays at the cap; rounds get longer instead.
    #[test]
    fn many_records_cannot_raise_the_probe_rate_past_the_cap() {
        let mut l = Liveness::default();
        for i in 0..20_000 {
            l.track(&format!("p.w{i}"), &record("p", &format!("w{i}"), true), 1);
        }
        let t0 = Instant::now();
        let ticks = (Duration::from_secs(1).as_millis() / PROBE_TICK.as_millis()) as u32;
        let sent: usize = (0..ticks)
            .map(|n| l.tick(&gw(), t0 + PROBE_TICK * n).len())
            .sum();
        assert_eq!(sent, MAX_PROBES_PER_SECOND);
        // And the no-responders of all of them cannot queue more confirmations than that.
        let mut confirming = 0;
        for p in l.tick(&gw(), t0 + Duration::from_secs(1)) {
            if l.answered(&p.reply, true, t0) == Verdict::Confirming {
                confirming += 1;
            }
        }
        assert!(confirming <= per_tick(usize::MAX));
        let later = l.tick(&gw(), t0 + Duration::from_secs(2));
        assert!(later.len() <= 2 * per_tick(usize::MAX));
    }
}
