//! This gateway's copy of the session records it serves, kept true by a watch on the sessions
//! bucket, so that a request on a known session reads no KV (ADR 0025).
//!
//! The bucket stays the truth: every write (`initialize`, `logging/setLevel`,
//! `resources/subscribe`, the hourly touch, `DELETE`) goes to KV with the revision read from
//! KV, never from here. What the cache may answer, and when it must not:
//!
//! - an entry is served only while this gateway's watch has run without a break since the
//!   entry was filled, the connection is up and has not reconnected, the entry was confirmed
//!   (by a KV read or a watch event) within `revalidate`, and its record was written less than
//!   [`TOUCH_AFTER`] ago (so the touch, and the bucket's age limit, still work as without the
//!   cache). Anything else is a miss: a KV read, as before;
//! - a change or a delete on another gateway reaches this one through the watch, within the
//!   bus's delivery time (well under a millisecond on one server); a client that changes a
//!   session on gateway A and at once uses it on gateway B may, in that window, still be
//!   served the old record by B. `revalidate` bounds the window if the watch stalls without
//!   an error, and the operator's purge (which the watch does not see: it purges the stream)
//!   also ends the entry through the session's `Ended` signal;
//! - a fill (the record read on a miss) never overwrites what the watch said after the read
//!   began: the watch's news of a key being read is held for the fill, and the newer revision
//!   wins (`Pending`);
//! - when the watch ends or errs, or the connection drops or reconnects, everything is
//!   dropped and the cache answers nothing until a new watch runs.
//!
//! Capped at `max_entries` records and [`MAX_BYTES`] of record bytes; past either, a new
//! session is simply not cached (its requests read KV, as before) until a sweep makes room.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{now_ms, SessionRecord, TOUCH_AFTER};
use crate::metrics::METRICS;

/// Record bytes the cache holds at most (the bucket allows 256 KiB a record).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// How long a deleted session is remembered as gone, and how long a fill may take before it
/// is not trusted (a deletion older than this may have been forgotten).
const GONE_KEEP: Duration = Duration::from_secs(60);

/// How often the watch task checks the connection and sweeps old entries.
const CHECK_EVERY: Duration = Duration::from_millis(250);
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// How long to wait before watching again after the watch could not start.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the cache may hold and for how long it trusts an entry without news.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// Records held at most; 0 turns the cache off (every request reads KV).
    pub max_entries: usize,
    /// How long an entry is served after it was last confirmed by a KV read or the watch.
    pub revalidate: Duration,
}

/// A session's state as the cache knows it.
#[derive(Clone)]
enum Known {
    Live {
        record: Arc<SessionRecord>,
        /// When the bucket stored this revision (Unix ms): the touch and expiry clock.
        written_ms: u64,
    },
    Gone,
}

#[derive(Clone)]
struct Cached {
    known: Known,
    revision: u64,
    confirmed: Instant,
    bytes: usize,
}

/// Reads of keys in flight: what the watch said about them meanwhile.
#[derive(Default)]
struct Pending {
    readers: u32,
    seen: Option<Cached>,
}

struct State {
    entries: HashMap<String, Cached>,
    pending: HashMap<String, Pending>,
    bytes: usize,
    /// Bumped whenever the watch starts or ends: a fill begun under another epoch is dropped.
    epoch: u64,
    /// The connection's connect count when the running watch started; `None`: no watch.
    watching: Option<u64>,
}

/// The connection's connect count while it is up, `None` while it is down.
type Link = Box<dyn Fn() -> Option<u64> + Send + Sync>;

struct Inner {
    link: Link,
    settings: CacheSettings,
    state: Mutex<State>,
}

/// The session records this gateway serves from memory.
#[derive(Clone)]
pub struct SessionCache(Arc<Inner>);

/// What a lookup found.
pub enum Lookup {
    /// A live session, confirmed recently enough.
    Live(Arc<SessionRecord>),
    /// A session known to be deleted.
    Gone,
    /// Read it from KV and [`Ticket::fill`] the answer in.
    Miss(Ticket),
}

/// A read from KV in flight for one key, begun under one epoch.
pub struct Ticket {
    cache: Option<SessionCache>,
    key: String,
    epoch: u64,
    started: Instant,
}

impl SessionCache {
    pub fn new(nats: async_nats::Client, settings: CacheSettings) -> Self {
        let link = move || {
            let up = nats.connection_state() == async_nats::connection::State::Connected;
            up.then(|| nats.statistics().connects.load(Ordering::Relaxed))
        };
        Self::with_link(Box::new(link), settings)
    }

    fn with_link(link: Link, settings: CacheSettings) -> Self {
        Self(Arc::new(Inner {
            link,
            settings,
            state: Mutex::new(State {
                entries: HashMap::new(),
                pending: HashMap::new(),
                bytes: 0,
                epoch: 0,
                watching: None,
            }),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data; carry on with it.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the running watch still covers everything: connected, without a reconnect.
    fn trusted(&self, state: &State) -> bool {
        state.watching.is_some() && (self.0.link)() == state.watching
    }

    /// The session `key` if the cache may answer for it, else a ticket to read it.
    pub fn lookup(&self, key: &str) -> Lookup {
        let mut state = self.state();
        if self.0.settings.max_entries == 0 || !self.trusted(&state) {
            METRICS.session_cache.with_label_values(&["bypass"]).inc();
            return Lookup::Miss(Ticket::unfillable(key));
        }
        if let Some(entry) = state.entries.get(key) {
            let fresh = entry.confirmed.elapsed() < self.0.settings.revalidate;
            match &entry.known {
                Known::Gone => {
                    METRICS.session_cache.with_label_values(&["gone"]).inc();
                    return Lookup::Gone;
                }
                Known::Live { record, written_ms }
                    if fresh
                        && now_ms().saturating_sub(*written_ms)
                            < TOUCH_AFTER.as_millis() as u64 =>
                {
                    METRICS.session_cache.with_label_values(&["hit"]).inc();
                    return Lookup::Live(record.clone());
                }
                Known::Live { .. } => {}
            }
        }
        METRICS.session_cache.with_label_values(&["miss"]).inc();
        state.pending.entry(key.to_owned()).or_default().readers += 1;
        Lookup::Miss(Ticket {
            cache: Some(self.clone()),
            key: key.to_owned(),
            epoch: state.epoch,
            started: Instant::now(),
        })
    }

    /// Records what this gateway itself wrote, or learned otherwise (a session's `Ended`
    /// signal: `revision` `u64::MAX`, since the operator's purge leaves no revision).
    pub fn learn(
        &self,
        key: &str,
        revision: u64,
        record: Option<Arc<SessionRecord>>,
        written_ms: u64,
        bytes: usize,
    ) {
        let mut cached = cached(revision, record, written_ms);
        cached.bytes = bytes;
        let mut state = self.state();
        if state.watching.is_some() {
            self.observe(&mut state, key, cached);
        }
    }

    /// Forgets `key`'s record, so the next request reads it from KV (its change was
    /// signalled, and the watch may not have brought it yet).
    pub fn drop_record(&self, key: &str) {
        let mut state = self.state();
        if let Some(e) = state.entries.remove(key) {
            state.bytes -= e.bytes;
        }
    }

    /// A watch event, or what this gateway knows first-hand.
    fn observe(&self, state: &mut State, key: &str, news: Cached) {
        if let Some(pending) = state.pending.get_mut(key) {
            if pending
                .seen
                .as_ref()
                .is_none_or(|s| s.revision < news.revision)
            {
                pending.seen = Some(news.clone());
            }
        }
        // Only sessions this gateway serves are held: the watch carries every session's
        // changes, and most live on other gateways.
        if let Some(entry) = state.entries.get(key) {
            if entry.revision <= news.revision {
                self.put(state, key, news);
            }
        }
    }

    /// Stores `entry` under `key` if there is room (or it replaces one).
    fn put(&self, state: &mut State, key: &str, entry: Cached) {
        let old = state.entries.get(key).map_or(0, |e| e.bytes);
        let adds = usize::from(!state.entries.contains_key(key));
        let fits = |s: &State| {
            s.entries.len() + adds <= self.0.settings.max_entries
                && s.bytes - old + entry.bytes <= MAX_BYTES
        };
        if !fits(state) {
            self.sweep(state);
            if !fits(state) {
                METRICS.session_cache.with_label_values(&["full"]).inc();
                if let Some(e) = state.entries.remove(key) {
                    state.bytes -= e.bytes;
                }
                return;
            }
        }
        state.bytes = state.bytes - old + entry.bytes;
        state.entries.insert(key.to_owned(), entry);
    }

    /// Drops what can no longer be served as it is: gone sessions past [`GONE_KEEP`], and
    /// records not confirmed within `revalidate` (a miss reads them again).
    fn sweep(&self, state: &mut State) {
        let revalidate = self.0.settings.revalidate;
        let before = state.entries.len();
        let mut freed = 0;
        state.entries.retain(|_, e| {
            let keep = match e.known {
                Known::Gone => e.confirmed.elapsed() < GONE_KEEP,
                Known::Live { .. } => e.confirmed.elapsed() < revalidate,
            };
            if !keep {
                freed += e.bytes;
            }
            keep
        });
        state.bytes -= freed;
        if state.entries.len() < before / 2 {
            state.entries.shrink_to_fit();
        }
    }

    /// Trusts nothing held so far: the watch (re)starts (`Some(connects)`) or ended (`None`).
    fn reset(&self, watching: Option<u64>) {
        let mut state = self.state();
        state.entries = HashMap::new();
        state.bytes = 0;
        for pending in state.pending.values_mut() {
            pending.seen = None;
        }
        state.epoch += 1;
        state.watching = watching;
    }

    /// Follows the sessions bucket until `stop`, watching again whenever the watch ends, errs,
    /// or the connection drops or reconnects.
    pub fn start_watch(&self, kv: kv::Store, stop: CancellationToken) {
        if self.0.settings.max_entries == 0 {
            return;
        }
        let cache = self.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                cache.watch_once(&kv, &stop).await;
                cache.reset(None);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_AFTER) => {}
                }
            }
        });
    }

    async fn watch_once(&self, kv: &kv::Store, stop: &CancellationToken) {
        let Some(connects) = (self.0.link)() else {
            return;
        };
        let mut watch = match kv.watch_all().await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the sessions bucket; reading KV per request");
                return;
            }
        };
        // The watch's consumer exists: every change from now on reaches it, so entries read
        // from here on are kept true.
        self.reset(Some(connects));
        let mut check = tokio::time::interval(CHECK_EVERY);
        let mut last_sweep = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                entry = watch.next() => match entry {
                    Some(Ok(entry)) => self.on_event(entry),
                    Some(Err(e)) => {
                        tracing::info!(error = %e, "the sessions watch broke; watching again");
                        return;
                    }
                    None => return,
                },
                _ = check.tick() => {
                    let state = self.state();
                    if !self.trusted(&state) {
                        tracing::info!("NATS connection lost or renewed; session cache dropped");
                        return;
                    }
                    drop(state);
                    if last_sweep.elapsed() >= SWEEP_EVERY {
                        last_sweep = Instant::now();
                        self.sweep(&mut self.state());
                    }
                }
            }
        }
    }

    fn on_event(&self, entry: kv::Entry) {
        let record = match entry.operation {
            kv::Operation::Put => match serde_json::from_slice::<SessionRecord>(&entry.value) {
                Ok(r) => Some(Arc::new(r)),
                Err(e) => {
                    // Not trusted either way: forget it, a miss reads KV and reports it.
                    tracing::debug!(error = %e, "unreadable session record in the watch");
                    let mut state = self.state();
                    if let Some(e) = state.entries.remove(&entry.key) {
                        state.bytes -= e.bytes;
                    }
                    return;
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        let written_ms = (entry.created.unix_timestamp_nanos() / 1_000_000) as u64;
        let mut news = cached(entry.revision, record, written_ms);
        news.bytes = entry.value.len();
        let mut state = self.state();
        self.observe(&mut state, &entry.key, news);
    }

    /// Records held now, and their bytes (for tests).
    pub fn usage(&self) -> (usize, usize) {
        let state = self.state();
        (state.entries.len(), state.bytes)
    }
}

fn cached(revision: u64, record: Option<Arc<SessionRecord>>, written_ms: u64) -> Cached {
    let known = match record {
        Some(record) => Known::Live { record, written_ms },
        None => Known::Gone,
    };
    Cached {
        known,
        revision,
        confirmed: Instant::now(),
        bytes: 0,
    }
}

impl Ticket {
    /// A ticket whose fill is dropped (the cache is off or not trusted).
    fn unfillable(key: &str) -> Self {
        Self {
            cache: None,
            key: key.to_owned(),
            epoch: 0,
            started: Instant::now(),
        }
    }

    /// Stores what KV answered (`None`: no live session; nothing is stored for it, so ids
    /// that never existed take no room). The newest of it, the held entry and what the watch
    /// said since the read began wins.
    pub fn fill(mut self, read: Option<(Arc<SessionRecord>, u64, u64, usize)>) {
        let Some(cache) = self.cache.take() else {
            return;
        };
        let mut state = cache.state();
        let seen = release(&mut state, &self.key);
        if state.epoch != self.epoch || self.started.elapsed() >= GONE_KEEP {
            return;
        }
        let mut best = read.map(|(record, revision, written_ms, bytes)| {
            let mut c = cached(revision, Some(record), written_ms);
            c.bytes = bytes;
            c
        });
        for other in [seen, state.entries.get(&self.key).cloned()]
            .into_iter()
            .flatten()
        {
            if best.as_ref().is_none_or(|b| b.revision < other.revision) {
                best = Some(other);
            }
        }
        if let Some(best) = best {
            cache.put(&mut state, &self.key, best);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // A read abandoned (its request gone, or KV failed) still gives back its place.
        if let Some(cache) = self.cache.take() {
            release(&mut cache.state(), &self.key);
        }
    }
}

/// One reader of `key` is done: what the watch said meanwhile.
fn release(state: &mut State, key: &str) -> Option<Cached> {
    let pending = state.pending.get_mut(key)?;
    pending.readers -= 1;
    if pending.readers == 0 {
        state.pending.remove(key).and_then(|p| p.seen)
    } else {
        pending.seen.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    fn record(level: &str) -> Arc<SessionRecord> {
        Arc::new(SessionRecord {
            protocol_version: "2025-11-25".into(),
            client_info: serde_json::Value::Null,
            client_capabilities: serde_json::Value::Null,
            created_ms: 0,
            log_level: Some(level.into()),
            resource_subscriptions: Vec::new(),
            principal: None,
        })
    }

    /// A cache under a running watch, on a simulated connection (connect count; 0: down).
    fn watched(max_entries: usize) -> (SessionCache, Arc<AtomicU64>) {
        let connects = Arc::new(AtomicU64::new(1));
        let link = connects.clone();
        let cache = SessionCache::with_link(
            Box::new(move || Some(link.load(Ordering::Relaxed)).filter(|c| *c > 0)),
            CacheSettings {
                max_entries,
                revalidate: Duration::from_secs(3600),
            },
        );
        cache.reset(Some(1));
        (cache, connects)
    }

    fn fill(cache: &SessionCache, key: &str, level: &str, revision: u64) {
        let Lookup::Miss(ticket) = cache.lookup(key) else {
            panic!("expected a miss")
        };
        ticket.fill(Some((record(level), revision, now_ms(), 100)));
    }

    fn level(cache: &SessionCache, key: &str) -> Option<String> {
        match cache.lookup(key) {
            Lookup::Live(r) => r.log_level.clone(),
            _ => None,
        }
    }

    #[test]
    fn a_filled_session_is_served_and_follows_the_watch() {
        let (cache, _) = watched(10);
        fill(&cache, "s1", "info", 1);
        assert_eq!(level(&cache, "s1").as_deref(), Some("info"));
        cache.learn("s1", 2, Some(record("debug")), now_ms(), 100);
        assert_eq!(level(&cache, "s1").as_deref(), Some("debug"));
        cache.learn("s1", 3, None, 0, 0);
        assert!(matches!(cache.lookup("s1"), Lookup::Gone));
    }

    #[test]
    fn a_read_begun_before_a_delete_does_not_bring_the_session_back() {
        let (cache, _) = watched(10);
        let Lookup::Miss(ticket) = cache.lookup("s1") else {
            panic!()
        };
        // The delete (revision 6) reaches the watch while the read of revision 5 is in flight.
        cache.learn("s1", 6, None, 0, 0);
        ticket.fill(Some((record("info"), 5, now_ms(), 100)));
        assert!(matches!(cache.lookup("s1"), Lookup::Gone));
    }

    #[test]
    fn a_reconnect_or_a_lost_watch_serves_nothing_held_before() {
        let (cache, connects) = watched(10);
        fill(&cache, "s1", "info", 1);
        connects.store(2, Ordering::Relaxed);
        assert!(matches!(cache.lookup("s1"), Lookup::Miss(_)), "reconnected");
        connects.store(0, Ordering::Relaxed);
        assert!(matches!(cache.lookup("s1"), Lookup::Miss(_)), "down");
        // A read begun under the old watch is not stored under the new one.
        connects.store(3, Ordering::Relaxed);
        let Lookup::Miss(stale) = cache.lookup("s1") else {
            panic!()
        };
        cache.reset(Some(3));
        stale.fill(Some((record("info"), 1, now_ms(), 100)));
        assert_eq!(
            cache.usage().0,
            0,
            "the old watch's entries and fills are dropped"
        );
        fill(&cache, "s1", "info", 1);
        assert!(matches!(cache.lookup("s1"), Lookup::Live(_)));
    }

    #[test]
    fn entries_older_than_revalidate_or_the_touch_age_are_read_again() {
        let (cache, _) = watched(10);
        let Lookup::Miss(ticket) = cache.lookup("old") else {
            panic!()
        };
        let written = now_ms() - TOUCH_AFTER.as_millis() as u64 - 1;
        ticket.fill(Some((record("info"), 1, written, 100)));
        assert!(
            matches!(cache.lookup("old"), Lookup::Miss(_)),
            "due a touch"
        );
        let strict = SessionCache::with_link(
            Box::new(|| Some(1)),
            CacheSettings {
                max_entries: 10,
                revalidate: Duration::ZERO,
            },
        );
        strict.reset(Some(1));
        fill(&strict, "s1", "info", 1);
        assert!(
            matches!(strict.lookup("s1"), Lookup::Miss(_)),
            "not confirmed lately"
        );
    }

    #[test]
    fn past_the_cap_new_sessions_are_not_held() {
        let (cache, _) = watched(2);
        fill(&cache, "s1", "info", 1);
        fill(&cache, "s2", "info", 2);
        fill(&cache, "s3", "info", 3);
        assert_eq!(cache.usage(), (2, 200));
        assert!(matches!(cache.lookup("s3"), Lookup::Miss(_)));
        assert!(
            matches!(cache.lookup("s1"), Lookup::Live(_)),
            "held ones still served"
        );
        let (roomy, _) = watched(10);
        fill(&roomy, "s1", "info", 1);
        let Lookup::Miss(big) = roomy.lookup("big") else {
            panic!()
        };
        big.fill(Some((record("info"), 4, now_ms(), MAX_BYTES)));
        assert_eq!(roomy.usage(), (1, 100), "the byte cap holds too");
    }

    #[test]
    fn abandoned_reads_leave_nothing_pending() {
        let (cache, _) = watched(10);
        for _ in 0..3 {
            let _ = cache.lookup("s1");
        }
        assert!(cache.state().pending.is_empty());
    }

    #[test]
    fn off_means_every_lookup_reads_kv() {
        let cache = SessionCache::with_link(
            Box::new(|| Some(1)),
            CacheSettings {
                max_entries: 0,
                revalidate: Duration::from_secs(60),
            },
        );
        cache.reset(Some(1));
        fill(&cache, "s1", "info", 1);
        assert!(matches!(cache.lookup("s1"), Lookup::Miss(_)));
    }
}
