//! The live copies and cancellations every open request stream follows, on two long-lived
//! subscriptions per gateway (ADR 0025).
//!
//! A request stream used to subscribe to its own live subject and its own cancel subject, and
//! to unsubscribe at its end: two subscriptions made and removed per call, which cost
//! nats-server more than the call itself (subject-tree inserts and removals, and the garbage
//! they leave; docs/PERFORMANCE.md, "Issue 18: direct baseline and profile"). Here the gateway
//! subscribes once to every live copy ([`subjects::EVENTS_LIVE_WILDCARD`]) and every
//! cancellation ([`subjects::CANCEL_WILDCARD`]) and hands each message to the streams open
//! under its key, as the stateless lane's replies are routed (`route/dispatcher.rs`).
//!
//! What a stream relied on from its own subscription, it gets from its [`Follow`]:
//! - *no gap at the start*: the subscriptions exist before the gateway serves, and a stream
//!   registers before it writes its `open` record or reads the store, so any copy the router
//!   takes after registration reaches it, and any copy it took before was stored before the
//!   stream's first store read;
//! - *a bounded buffer for a slow reader*: each follow holds at most [`LIVE_BUFFER`] copies;
//!   past it copies are dropped and the follow is marked [`Follow::lost`], so the stream
//!   reads them again from the store (exactly, rather than guessing from a full buffer);
//! - *a reconnect*: copies published while the connection was away are lost, so every follow
//!   is marked lost when the connection comes back and reads the store once.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bus_schema::subjects;
use dashmap::DashMap;
use futures::StreamExt;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::LIVE_BUFFER;

/// Request streams this gateway follows at once (each holds one live entry, and a session
/// request one cancel entry). Each costs its buffer of at most [`LIVE_BUFFER`] copies; past it
/// a new stream is refused rather than the table growing. A bound of its own: with HTTP/2 a
/// connection carries up to `--http2-max-streams` requests, so the connection limits alone
/// no longer bound it. Worst case held: `MAX_FOLLOWS × LIVE_BUFFER` copies.
pub const MAX_FOLLOWS: usize = 50_000;

/// How often the router checks whether its connection came back (an atomic load).
const RECONNECT_CHECK: Duration = Duration::from_millis(250);

/// Why a stream cannot follow its live copies.
#[derive(Debug, thiserror::Error)]
#[error("this gateway follows {MAX_FOLLOWS} streams already")]
pub struct TooManyFollows;

/// One registered live follower.
struct LiveEntry {
    id: u64,
    tx: mpsc::Sender<async_nats::Message>,
    lost: Arc<AtomicBool>,
    /// Wakes a reader waiting for copies when `lost` is set: the copy it missed may be the
    /// last one (the final reply), after which nothing else would wake it.
    wake: Arc<Notify>,
}

impl LiveEntry {
    fn mark_lost(&self) {
        self.lost.store(true, Ordering::Release);
        // A permit is kept if the reader is not waiting yet, so the wake is never missed.
        self.wake.notify_one();
    }
}

/// One registered cancel watcher.
struct CancelEntry {
    id: u64,
    fired: CancellationToken,
}

struct Tables {
    live: DashMap<String, Vec<LiveEntry>>,
    cancels: DashMap<String, Vec<CancelEntry>>,
    /// Live entries registered (cancel entries come with them, at most one each).
    follows: AtomicUsize,
    next_id: AtomicU64,
}

/// This gateway's live and cancel subscriptions and the streams following them.
#[derive(Clone)]
pub struct LiveRouter {
    tables: Arc<Tables>,
}

/// One stream's share of the router: its live copies, its cancellation, and its place in the
/// tables, given back when dropped.
pub struct Follow {
    tables: Arc<Tables>,
    id: u64,
    key: String,
    rx: mpsc::Receiver<async_nats::Message>,
    lost: Arc<AtomicBool>,
    wake: Arc<Notify>,
    cancel: Option<(String, CancellationToken)>,
}

impl LiveRouter {
    /// Subscribes to every live copy and every cancellation on `nats` and routes them until
    /// `stop`. Returns once the server holds both subscriptions.
    pub async fn start(
        nats: async_nats::Client,
        stop: CancellationToken,
    ) -> Result<Self, async_nats::Error> {
        let mut live = nats.subscribe(subjects::EVENTS_LIVE_WILDCARD).await?;
        let mut cancels = nats.subscribe(subjects::CANCEL_WILDCARD).await?;
        // A stream registered after this cannot miss a copy for want of a subscription.
        nats.flush().await?;
        let tables = Arc::new(Tables {
            live: DashMap::new(),
            cancels: DashMap::new(),
            follows: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        });
        let routes = tables.clone();
        tokio::spawn(async move {
            let mut connects = nats.statistics().connects.load(Ordering::Relaxed);
            let mut check = tokio::time::interval(RECONNECT_CHECK);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    m = live.next() => match m {
                        Some(m) => routes.route_live(m),
                        None => break,
                    },
                    m = cancels.next() => match m {
                        Some(m) => routes.route_cancel(&m.subject),
                        None => break,
                    },
                    _ = check.tick() => {
                        let now = nats.statistics().connects.load(Ordering::Relaxed);
                        if now != connects {
                            connects = now;
                            // Once the server holds the subscriptions again (the client sends
                            // them first on a new connection), every stream reads the store
                            // for what went by meanwhile.
                            let _ = nats.flush().await;
                            routes.mark_all_lost();
                        }
                    }
                }
            }
            // Dropping every sender ends each follow's `next()`: its stream reads the store.
            routes.live.clear();
        });
        Ok(Self { tables })
    }

    /// Registers a stream of `scope` keyed `stream`, and its cancel subject if it has one.
    /// Register before the stream's first store read or write (see the module doc).
    pub fn follow(
        &self,
        scope: &str,
        stream: &str,
        cancel_on: Option<String>,
    ) -> Result<Follow, TooManyFollows> {
        let t = &self.tables;
        if t.follows.fetch_add(1, Ordering::AcqRel) >= MAX_FOLLOWS {
            t.follows.fetch_sub(1, Ordering::AcqRel);
            return Err(TooManyFollows);
        }
        let id = t.next_id.fetch_add(1, Ordering::Relaxed);
        let key = subjects::session_events_live_key(scope, stream);
        let (tx, rx) = mpsc::channel(LIVE_BUFFER);
        let lost = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        t.live.entry(key.clone()).or_default().push(LiveEntry {
            id,
            tx,
            lost: lost.clone(),
            wake: wake.clone(),
        });
        let cancel = cancel_on.map(|subject| {
            let fired = CancellationToken::new();
            t.cancels
                .entry(subject.clone())
                .or_default()
                .push(CancelEntry {
                    id,
                    fired: fired.clone(),
                });
            (subject, fired)
        });
        Ok(Follow {
            tables: t.clone(),
            id,
            key,
            rx,
            lost,
            wake,
            cancel,
        })
    }

    /// Streams following now (a gauge for tests and metrics).
    pub fn follows(&self) -> usize {
        self.tables.follows.load(Ordering::Acquire)
    }
}

impl Tables {
    fn route_live(&self, msg: async_nats::Message) {
        let Some(key) = subjects::live_event_key(&msg.subject) else {
            return;
        };
        // Copies of streams no one follows here (other gateways', tasks nobody reads) are
        // dropped: the store keeps them.
        let Some(entries) = self.live.get(key) else {
            return;
        };
        for entry in entries.iter() {
            match entry.tx.try_send(msg.clone()) {
                Ok(()) => {}
                // The reader is behind: it reads this one again from the store.
                Err(mpsc::error::TrySendError::Full(_)) => entry.mark_lost(),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    fn route_cancel(&self, subject: &str) {
        if let Some(entries) = self.cancels.get(subject) {
            for entry in entries.iter() {
                entry.fired.cancel();
            }
        }
    }

    fn mark_all_lost(&self) {
        for entries in self.live.iter() {
            for entry in entries.iter() {
                entry.mark_lost();
            }
        }
    }
}

impl Follow {
    /// The next live copy; `None` only if the router stopped.
    pub async fn next(&mut self) -> Option<async_nats::Message> {
        self.rx.recv().await
    }

    /// A live copy already waiting, if any.
    pub fn try_next(&mut self) -> Option<async_nats::Message> {
        self.rx.try_recv().ok()
    }

    /// Resolves when copies were dropped for this stream (see [`Follow::lost`]). Holds no
    /// borrow, so it can wait beside [`Follow::next`].
    pub fn woken(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let wake = self.wake.clone();
        async move { wake.notified().await }
    }

    /// Whether copies were dropped since the last call (buffer full, or a reconnect): the
    /// stream must read the store from its position before trusting live copies again.
    pub fn lost(&self) -> bool {
        self.lost.swap(false, Ordering::AcqRel)
    }

    /// Also follows the request's cancel subject, once known (a resumed stream learns it from
    /// its first stored record). Replaces any earlier one.
    pub fn cancel_on(&mut self, subject: String) {
        if let Some((old, _)) = self.cancel.take() {
            remove(&self.tables.cancels, &old, |e| e.id == self.id);
        }
        let fired = CancellationToken::new();
        self.tables
            .cancels
            .entry(subject.clone())
            .or_default()
            .push(CancelEntry {
                id: self.id,
                fired: fired.clone(),
            });
        self.cancel = Some((subject, fired));
    }

    /// Resolves when the request is cancelled; never if it has no cancel subject. Holds no
    /// borrow, so it can wait beside [`Follow::next`].
    pub fn cancelled(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let fired = self.cancel.as_ref().map(|(_, fired)| fired.clone());
        async move {
            match fired {
                Some(fired) => fired.cancelled().await,
                None => std::future::pending().await,
            }
        }
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let t = &self.tables;
        remove(&t.live, &self.key, |e| e.id == self.id);
        if let Some((subject, _)) = &self.cancel {
            remove(&t.cancels, subject, |e| e.id == self.id);
        }
        t.follows.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Removes the entries of `key` that `mine` picks, and the key once it has none.
fn remove<T>(table: &DashMap<String, Vec<T>>, key: &str, mine: impl Fn(&T) -> bool) {
    let empty = match table.get_mut(key) {
        Some(mut entries) => {
            entries.retain(|e| !mine(e));
            entries.is_empty()
        }
        None => false,
    };
    if empty {
        table.remove_if(key, |_, entries| entries.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> LiveRouter {
        LiveRouter {
            tables: Arc::new(Tables {
                live: DashMap::new(),
                cancels: DashMap::new(),
                follows: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    fn copy(scope: &str, stream: &str) -> async_nats::Message {
        async_nats::Message {
            subject: subjects::session_events_live(scope, stream)
                .replace('*', "demo")
                .into(),
            reply: None,
            payload: bytes::Bytes::from_static(b"{}"),
            headers: None,
            status: None,
            description: None,
            length: 2,
        }
    }

    #[test]
    fn copies_reach_their_stream_only_and_entries_go_with_it() {
        let router = tables();
        let mut a = router.follow("s1", "c1", None).unwrap();
        let mut b = router.follow("s1", "c2", None).unwrap();
        router.tables.route_live(copy("s1", "c1"));
        assert!(a.try_next().is_some());
        assert!(b.try_next().is_none());
        drop(a);
        drop(b);
        assert_eq!(router.follows(), 0);
        assert!(router.tables.live.is_empty(), "no key left behind");
    }

    #[test]
    fn a_full_buffer_marks_the_follow_lost_instead_of_growing() {
        let router = tables();
        let mut f = router.follow("s1", "c1", None).unwrap();
        for _ in 0..LIVE_BUFFER + 10 {
            router.tables.route_live(copy("s1", "c1"));
        }
        assert!(f.lost(), "dropped copies are reported");
        assert!(!f.lost(), "once");
        let mut held = 0;
        while f.try_next().is_some() {
            held += 1;
        }
        assert_eq!(held, LIVE_BUFFER);
    }

    #[test]
    fn cancels_fire_the_named_request_only() {
        let router = tables();
        let f = router
            .follow("s1", "c1", Some("x.cancel.1".into()))
            .unwrap();
        let g = router
            .follow("s1", "c2", Some("x.cancel.2".into()))
            .unwrap();
        router.tables.route_cancel("x.cancel.1");
        assert!(f.cancel.as_ref().unwrap().1.is_cancelled());
        assert!(!g.cancel.as_ref().unwrap().1.is_cancelled());
        drop((f, g));
        assert!(router.tables.cancels.is_empty());
    }

    #[test]
    fn the_table_is_capped() {
        let router = tables();
        router
            .tables
            .follows
            .store(MAX_FOLLOWS - 1, Ordering::Release);
        let last = router.follow("s1", "c1", None).expect("room for one more");
        assert!(
            router.follow("s1", "c2", None).is_err(),
            "refused past the cap"
        );
        drop(last);
        assert!(router.follow("s1", "c3", None).is_ok(), "room again");
    }
}
