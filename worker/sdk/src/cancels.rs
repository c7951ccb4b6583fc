//! Cancellations of the calls this worker runs, heard on one subscription to the pool's
//! cancel subjects (`subjects::pool_cancels`) and handed to the call that waits for each.
//!
//! A subscription per call, as before, cost two more protocol operations through nats-server
//! per call (SUB and UNSUB), and each one changed the server's subscription tree, which drops
//! its subject-match cache (issue 18's profile; ADR 0026). The pool-wide subscription is made
//! once, before the first pull, so a call is always watched before it starts. Every replica
//! of the pool hears every cancellation of the pool; they are rare (a client that goes away),
//! and one that names no call running here is ignored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bus_schema::names::PoolName;
use bus_schema::subjects;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// The calls waiting for a cancellation, by subject. Bounded by the calls running here
/// (`max_in_flight`): an entry lives exactly as long as its call's [`Watch`].
#[derive(Default)]
pub(crate) struct Cancels {
    waiting: Mutex<HashMap<String, Vec<(u64, CancellationToken)>>>,
    next: AtomicU64,
    /// Whether the pool-wide subscription is up; without it each call subscribes itself.
    listening: bool,
}

impl Cancels {
    /// Subscribes to `pool`'s cancellations and dispatches them until the connection closes.
    /// If the subscription fails, calls fall back to a subscription each.
    pub(crate) async fn listen(nats: &async_nats::Client, pool: &PoolName) -> Arc<Self> {
        match nats.subscribe(subjects::pool_cancels(pool)).await {
            Ok(mut sub) => {
                let me = Arc::new(Self {
                    listening: true,
                    ..Self::default()
                });
                let weak = Arc::downgrade(&me);
                tokio::spawn(async move {
                    while let Some(msg) = sub.next().await {
                        let Some(me) = weak.upgrade() else { return };
                        me.fire(msg.subject.as_str());
                    }
                });
                me
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for the pool's cancellations; each call will subscribe");
                Arc::new(Self::default())
            }
        }
    }

    /// Cancels every call waiting on `subject`.
    fn fire(&self, subject: &str) {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        for (_, token) in waiting.get(subject).into_iter().flatten() {
            token.cancel();
        }
    }

    /// Starts watching `subject` for one call, if the pool-wide subscription receives it
    /// (`None`: the caller subscribes to it itself).
    pub(crate) fn watch(self: &Arc<Self>, pool: &PoolName, subject: &str) -> Option<Watch> {
        if !self.listening || !subjects::is_pool_cancel(pool, subject) {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(subject.to_owned())
            .or_default()
            .push((id, token.clone()));
        Some(Watch {
            cancels: self.clone(),
            subject: subject.to_owned(),
            id,
            token,
        })
    }

    #[cfg(test)]
    fn watched(&self) -> usize {
        self.waiting.lock().unwrap().values().map(Vec::len).sum()
    }
}

/// One call's interest in its cancel subject; dropping it stops watching.
pub(crate) struct Watch {
    cancels: Arc<Cancels>,
    subject: String,
    id: u64,
    token: CancellationToken,
}

impl Watch {
    pub(crate) async fn cancelled(&self) {
        self.token.cancelled().await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut waiting = self
            .cancels
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(calls) = waiting.get_mut(&self.subject) {
            calls.retain(|(id, _)| *id != self.id);
            if calls.is_empty() {
                waiting.remove(&self.subject);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening() -> Arc<Cancels> {
        Arc::new(Cancels {
            listening: true,
            ..Cancels::default()
        })
    }

    #[test]
    fn a_cancellation_reaches_only_the_calls_on_its_subject() {
        let pool = PoolName::new("demo").unwrap();
        let cancels = listening();
        let a = cancels.watch(&pool, &subjects::cancel(&pool, "a")).unwrap();
        let a2 = cancels.watch(&pool, &subjects::cancel(&pool, "a")).unwrap();
        let b = cancels.watch(&pool, &subjects::cancel(&pool, "b")).unwrap();
        cancels.fire(&subjects::cancel(&pool, "a"));
        cancels.fire(&subjects::cancel(&pool, "nobody"));
        assert!(a.token.is_cancelled() && a2.token.is_cancelled());
        assert!(!b.token.is_cancelled());
    }

    #[test]
    fn a_finished_call_stops_watching() {
        let pool = PoolName::new("demo").unwrap();
        let cancels = listening();
        let subject = subjects::cancel(&pool, "a");
        let a = cancels.watch(&pool, &subject).unwrap();
        let a2 = cancels.watch(&pool, &subject).unwrap();
        drop(a);
        assert_eq!(cancels.watched(), 1);
        drop(a2);
        assert_eq!(cancels.watched(), 0, "no entry outlives its calls");
        assert!(cancels.waiting.lock().unwrap().is_empty());
    }

    #[test]
    fn subjects_the_subscription_does_not_receive_are_left_to_the_call() {
        let pool = PoolName::new("demo").unwrap();
        let other = PoolName::new("files").unwrap();
        let cancels = listening();
        assert!(cancels
            .watch(&pool, &subjects::cancel(&other, "a"))
            .is_none());
        assert!(cancels.watch(&pool, "somewhere.else").is_none());
        let deaf = Arc::new(Cancels::default());
        assert!(deaf.watch(&pool, &subjects::cancel(&pool, "a")).is_none());
        assert_eq!(cancels.watched(), 0);
    }
}
