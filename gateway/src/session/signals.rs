//! Session signals: what every gateway holding a stream of a session must act on, wherever
//! the request that caused it landed. One core-NATS subscription per gateway
//! (`subjects::SESSION_SIGNALS_WILDCARD`) feeds an in-process map from session to its open standalone
//! streams here:
//!
//! - a new standalone stream replaces every other one of its session, on any node, so one
//!   session holds one standalone stream however many GETs it sends;
//! - `DELETE` ends the session's streams everywhere;
//! - a change of the session's resource subscriptions tells its stream to re-read them once,
//!   instead of reading the session record on every `resources/updated`;
//! - every signal also reaches the session cache (ADR 0025): an ended session is gone (the
//!   operator's purge leaves no trace the cache's watch could see), a changed one is read
//!   again, whichever of the signal and the watch comes first.
//!
//! Signals are fire-and-forget: a gateway that misses one (NATS reconnecting) keeps a stream
//! that the next signal, the session's expiry, or the client ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bus_schema::messages::{decode, encode, SessionEvent, SessionSignal};
use bus_schema::{subjects, PROTOCOL_VERSION};
use dashmap::DashMap;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{SessionCache, SessionId};

/// One open standalone stream, as the signals see it.
struct Entry {
    stream: String,
    /// When it opened (Unix microseconds, so that two GETs in one millisecond still order):
    /// a stream ends only for a newer one.
    opened_us: u64,
    /// Fired when the stream must end (replaced, or the session ended).
    end: CancellationToken,
    /// Set when the session's subscriptions changed since the stream last read them.
    stale: Arc<AtomicBool>,
}

/// This gateway's open standalone streams by session, and the signals that act on them.
#[derive(Clone)]
pub struct SessionSignals {
    nats: async_nats::Client,
    open: Arc<DashMap<String, Vec<Entry>>>,
}

/// A registered standalone stream: ends when `end` fires; unregisters when dropped.
pub struct StandaloneSlot {
    pub end: CancellationToken,
    /// Set when the session's subscriptions changed; the stream clears it when it re-reads.
    pub stale: Arc<AtomicBool>,
    session: String,
    stream: String,
    open: Arc<DashMap<String, Vec<Entry>>>,
}

impl Drop for StandaloneSlot {
    fn drop(&mut self) {
        let empty = match self.open.get_mut(&self.session) {
            Some(mut streams) => {
                streams.retain(|e| e.stream != self.stream);
                streams.is_empty()
            }
            None => false,
        };
        if empty {
            self.open
                .remove_if(&self.session, |_, streams| streams.is_empty());
        }
    }
}

impl SessionSignals {
    /// Subscribes to every session's signals and starts acting on them until `stop`.
    pub async fn start(
        nats: async_nats::Client,
        cache: Option<SessionCache>,
        stop: CancellationToken,
    ) -> Result<Self, async_nats::SubscribeError> {
        let mut signals = nats.subscribe(subjects::SESSION_SIGNALS_WILDCARD).await?;
        let me = Self {
            nats,
            open: Arc::new(DashMap::new()),
        };
        let open = me.open.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = signals.next() => match m { Some(m) => m, None => return },
                };
                let Some(session) = subjects::session_from_signal(&msg.subject) else {
                    continue;
                };
                match decode::<SessionSignal>(&msg.payload) {
                    Ok(signal) => {
                        if let Some(cache) = &cache {
                            tell_cache(cache, session, &signal.event);
                        }
                        act(&open, session, &signal.event)
                    }
                    Err(e) => tracing::debug!(error = %e, "ignoring an unreadable session signal"),
                }
            }
        });
        Ok(me)
    }

    /// Registers a new standalone stream of `session` and tells every gateway, so that the
    /// session's other standalone streams end.
    pub async fn open_standalone(&self, session: &SessionId) -> StandaloneSlot {
        let stream = uuid::Uuid::new_v4().simple().to_string();
        let opened_us = now_us();
        let end = CancellationToken::new();
        let stale = Arc::new(AtomicBool::new(false));
        self.open
            .entry(session.as_str().to_owned())
            .or_default()
            .push(Entry {
                stream: stream.clone(),
                opened_us,
                end: end.clone(),
                stale: stale.clone(),
            });
        let opened = SessionEvent::StandaloneOpened {
            stream: stream.clone(),
            opened_us,
        };
        self.signal(session, opened).await;
        StandaloneSlot {
            end,
            stale,
            session: session.as_str().to_owned(),
            stream,
            open: self.open.clone(),
        }
    }

    /// Tells every gateway about `event` of `session`.
    pub async fn signal(&self, session: &SessionId, event: SessionEvent) {
        publish(&self.nats, session, event).await
    }
}

/// Tells every gateway about `event` of `session`, from any connection allowed to (a
/// gateway's, or the operator's `mcpbusctl purge-session`).
pub async fn publish(nats: &async_nats::Client, session: &SessionId, event: SessionEvent) {
    let signal = SessionSignal {
        protocol: PROTOCOL_VERSION,
        event,
    };
    let subject = subjects::session_signal(session.as_str());
    if let Err(e) = nats.publish(subject, encode(&signal)).await {
        tracing::warn!(error = %e, "could not publish a session signal");
    }
}

/// Unix time in microseconds.
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What a signal does to the cached record of `session`.
fn tell_cache(cache: &SessionCache, session: &str, event: &SessionEvent) {
    match event {
        // Ids are never reused: the greatest revision keeps it gone.
        SessionEvent::Ended => cache.learn(session, u64::MAX, None, 0, 0),
        SessionEvent::SubscriptionsChanged | SessionEvent::LogLevelChanged => {
            cache.drop_record(session)
        }
        SessionEvent::StandaloneOpened { .. } => {}
    }
}

/// What a signal does to this gateway's streams of `session`.
fn act(open: &DashMap<String, Vec<Entry>>, session: &str, event: &SessionEvent) {
    let Some(streams) = open.get(session) else {
        return;
    };
    for entry in streams.iter() {
        match event {
            // Ties (same microsecond) are broken by the stream id, the same way everywhere.
            SessionEvent::StandaloneOpened { stream, opened_us }
                if (entry.opened_us, &entry.stream) < (*opened_us, stream) =>
            {
                entry.end.cancel()
            }
            SessionEvent::StandaloneOpened { .. } => {}
            SessionEvent::Ended => entry.end.cancel(),
            SessionEvent::SubscriptionsChanged | SessionEvent::LogLevelChanged => {
                entry.stale.store(true, Ordering::Relaxed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stream: &str, opened_us: u64) -> Entry {
        Entry {
            stream: stream.into(),
            opened_us,
            end: CancellationToken::new(),
            stale: Arc::new(AtomicBool::new(false)),
        }
    }

    #[test]
    fn a_new_stream_replaces_the_older_ones_and_an_end_ends_all() {
        let open = DashMap::new();
        open.insert("s".to_owned(), vec![entry("a", 1), entry("b", 2)]);
        // A late signal of the older stream ends nothing newer.
        let late = SessionEvent::StandaloneOpened {
            stream: "a".into(),
            opened_us: 1,
        };
        act(&open, "s", &late);
        assert!(!open.get("s").unwrap()[1].end.is_cancelled());
        let opened = SessionEvent::StandaloneOpened {
            stream: "b".into(),
            opened_us: 2,
        };
        act(&open, "s", &opened);
        let ended: Vec<bool> = open
            .get("s")
            .unwrap()
            .iter()
            .map(|e| e.end.is_cancelled())
            .collect();
        assert_eq!(ended, [true, false]);
        act(&open, "s", &SessionEvent::SubscriptionsChanged);
        assert!(open.get("s").unwrap()[1].stale.load(Ordering::Relaxed));
        act(&open, "s", &SessionEvent::Ended);
        assert!(open.get("s").unwrap()[1].end.is_cancelled());
        act(&open, "other", &SessionEvent::Ended);
    }
}
