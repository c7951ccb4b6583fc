//! Server→client streams backed by JetStream (ADR 0003).
//!
//! `request.rs` serves one request's stream from the session events stream, fresh or resumed
//! on any node; `broadcast.rs` carries cluster-wide notifications from the broadcast stream
//! to every open standalone and listen stream of this gateway; `announce.rs` stores workers'
//! server-wide messages in it; `bus_schema::event_id` is the cursor
//! format. This module may read and write the events and broadcast streams; it knows nothing
//! of HTTP.

mod announce;
mod broadcast;
mod live;
mod replay;
mod request;

use async_nats::jetstream::stream::DirectGetErrorKind;
use std::sync::Arc;

use async_nats::jetstream::{self, stream::Stream};

pub use announce::serve_announcements;
pub use broadcast::{
    announce_catalog_changes, announce_policy_changes, BroadcastHub, BroadcastItem, Follower,
    Rendered,
};
pub use bus_schema::event_id::EventId;
pub use live::{LiveRouter, MAX_FOLLOWS};
pub use request::{RequestStream, StreamError, StreamOrigin};

/// Live copies one request stream buffers while its client is not reading. Past it, copies
/// are dropped by the router (`live.rs`) and read again from `MCPBUS_EVENTS` (see
/// `request.rs`), so a client that never reads costs at most this many messages.
pub const LIVE_BUFFER: usize = 256;

/// Handles on the two streams, shared by every request. Cloning is one reference count:
/// every open stream holds one, so it must stay small (a `Stream` handle carries the whole
/// stream info).
#[derive(Clone)]
pub struct EventStore(Arc<Handles>);

pub struct Handles {
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub events: Stream,
    pub broadcast: Stream,
    /// The calls work queue, to take back a call that is cancelled before it runs.
    pub calls: Stream,
    /// The live copies and cancellations every request stream follows (ADR 0025).
    pub router: LiveRouter,
}

impl EventStore {
    pub fn new(
        nats: async_nats::Client,
        js: jetstream::Context,
        events: Stream,
        broadcast: Stream,
        calls: Stream,
        router: LiveRouter,
    ) -> Self {
        Self(Arc::new(Handles {
            nats,
            js,
            events,
            broadcast,
            calls,
            router,
        }))
    }

    /// Cancels a call: out of the queue if no worker has finished it (`queued_at`, 0 when
    /// unknown), and a message on `subject` for the worker running it.
    pub async fn cancel_call(&self, subject: String, queued_at: u64) {
        if queued_at > 0 {
            // Fails when a worker already acknowledged it: then it has finished anyway.
            let _ = self.calls.delete_message(queued_at).await;
        }
        let mut hdrs = async_nats::HeaderMap::new();
        mcpbus_telemetry::inject_current(&mut hdrs);
        if let Err(e) = self
            .nats
            .publish_with_headers(subject, hdrs, bytes::Bytes::new())
            .await
        {
            tracing::warn!(error = %e, "could not publish a cancellation");
        }
    }
}

/// Drops every stored event of an ended session from the events stream `events` (ADR 0003,
/// point 5). A failure is logged: the events then age out with the stream's retention.
pub async fn purge_session_events(events: &Stream, session: &str) {
    let purge = events
        .purge()
        .filter(bus_schema::subjects::session_events_all(session))
        .await;
    if let Err(e) = purge {
        tracing::warn!(error = %e, "could not purge an ended session's events; they age out");
    }
}

impl std::ops::Deref for EventStore {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

impl EventStore {
    /// The last stored event of stream `key` of `scope` (a session, or a task's scope), with
    /// its sequence, if any is left.
    pub async fn last_event(
        &self,
        pool: &bus_schema::names::PoolName,
        scope: &str,
        key: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, StreamError> {
        match self
            .events
            .direct_get_last_for_subject(bus_schema::subjects::session_events(pool, scope, key))
            .await
        {
            Ok(m) => Ok(Some((m.sequence, m.payload.to_vec()))),
            Err(e) if not_found(&e.kind()) => Ok(None),
            Err(e) => Err(StreamError::Store(e.to_string())),
        }
    }
}

/// Whether a direct-get failure only means "no such message".
fn not_found(kind: &DirectGetErrorKind) -> bool {
    matches!(kind, DirectGetErrorKind::NotFound)
}
