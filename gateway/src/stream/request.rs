//! One request's SSE stream, read from the session events stream.
//!
//! The same reader serves a fresh `tools/call` and a `GET` that resumes it on another node:
//! it registers for the live republished copies first (with the gateway's one live
//! subscription, `live.rs`), then reads whatever it has not delivered from the store, and
//! from then on takes live copies, falling back to the store whenever `Nats-Last-Sequence`
//! shows it missed one, or the router dropped some for it. A short read from the store is a
//! direct get per event; a long one (a resume after many events, a reader that fell far
//! behind) is read in bulk (`replay.rs`, ADR 0024).

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use bus_schema::failover::{self, GaveUp, Repeat};
use bus_schema::messages::{decode, encode, CallEvent, CallReply, StreamOpen};
use bus_schema::{headers, subjects, topology, PROTOCOL_VERSION};
use serde_json::Value;
use tokio::time::Instant;

use super::live::Follow;
use super::replay::{self, Stored, DIRECT_GET_SPAN};
use super::{not_found, EventId, EventStore};
use crate::catalog::ToolRoute;
use crate::metrics::METRICS;
use crate::route::{
    new_call_id, prepare, unix_ms, CallSpec, CallTracker, CallUpdate, Dispatcher, RouteError,
};

/// How long a stream hears nothing before it reads the store once, doubling each time the
/// store has nothing new either, up to [`QUIET_MAX`]. A live copy can be lost between NATS
/// servers (a route down for a moment while a node restarts) without our own connection
/// noticing; without this check the stream would wait for it until the call's deadline
/// (issue 15; ADR 0031, point 8). Cost: one direct get per quiet stream per check.
const QUIET_FIRST: Duration = Duration::from_secs(5);
const QUIET_MAX: Duration = Duration::from_secs(60);

/// Why a stream cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The cursor's event, or the whole stream, is past retention (or never existed in this
    /// session: the two are indistinguishable by design, see ADR 0003 point 4).
    #[error("the events of this stream after the given Last-Event-ID are no longer retained")]
    Expired,
    #[error("event store unavailable: {0}")]
    Store(String),
}

/// The request a stored stream answers: whose it is and what its response needs.
pub struct StreamOrigin<'a> {
    pub session: &'a str,
    /// The JSON-RPC id of the client's request.
    pub request_id: Value,
    pub progress_token: Option<Value>,
    /// The call id to use; a fresh one when `None`.
    pub call_id: Option<String>,
}

/// A request's stream being delivered to one client connection.
pub struct RequestStream {
    store: EventStore,
    key: String,
    subject: String,
    /// Its live copies and, on the session lane, its cancellation (`live.rs`).
    live: Follow,
    /// The sequence of the last event delivered (or skipped): the stream's position.
    cursor: u64,
    /// Read from the store before taking live copies.
    from_store: bool,
    /// The highest sequence known to be stored for this stream while reading the store, or
    /// 0: how far the read spans, which decides direct get or bulk. Not known (0) when the
    /// client is too slow for the live copies: it reads one by one, as it can take them,
    /// without a consumer per slow reader or a batch held for it.
    store_until: u64,
    /// Events read in bulk and not yet delivered.
    backlog: VecDeque<Stored>,
    /// The bulk read behind `backlog` reached the end of the store: once it is delivered,
    /// take live copies without asking the store again.
    caught_up: bool,
    /// How long to hear nothing before the next look at the store (see [`QUIET_FIRST`]).
    quiet: Duration,
    tracker: CallTracker,
    open: StreamOpen,
    /// Position of the call in the calls stream (0 when resumed: not known here).
    queued_at: u64,
}

impl RequestStream {
    /// Starts a call whose replies are stored: subscribe, write the `open` record, queue the
    /// call. The stream is positioned right after the `open` record.
    pub async fn start(
        store: &EventStore,
        dispatcher: &Dispatcher,
        route: &ToolRoute,
        spec: CallSpec,
        default_timeout: Duration,
        origin: StreamOrigin<'_>,
    ) -> Result<Self, RouteError> {
        let StreamOrigin {
            session,
            request_id,
            progress_token,
            call_id,
        } = origin;
        let key = call_id.unwrap_or_else(new_call_id);
        let subject = subjects::session_events(&route.pool, session, &key);
        // A session's request is cancelled by its JSON-RPC id (any node can name that); a
        // task's round by its call id.
        let cancel_on = spec
            .task_id
            .is_none()
            .then(|| subjects::cancel_request(&route.pool, session, &request_id));
        let (mut request, tracker) = prepare(
            route,
            spec,
            default_timeout,
            key.clone(),
            subject.clone(),
            true,
        );
        request.cancel_on = cancel_on.clone();
        // Registered before the `open` record is written and the call queued, so every
        // reply the router takes from now on reaches this stream (ADR 0025). When the
        // client cancels the request (session lane), the stream ends without a response.
        let live = store
            .router
            .follow(session, &key, cancel_on)
            .map_err(|e| RouteError::Publish(e.to_string()))?;
        let open = StreamOpen {
            protocol: PROTOCOL_VERSION,
            kind: StreamOpen::KIND.to_owned(),
            call_id: key.clone(),
            request_id,
            progress_token,
            deadline_ms: request.deadline_ms,
            timeout_ms: request.deadline_ms.saturating_sub(unix_ms()),
            tool: route.name().to_owned(),
            pool: route.pool.clone(),
        };
        // One failover budget for both writes: the client hears within it either way.
        let until = failover::deadline();
        let open_seq = store_open(store, &subject, &open, until).await?;
        let queued_at = dispatcher.publish_within(route, &request, until).await?;
        Ok(Self {
            queued_at,
            store: store.clone(),
            key,
            subject,
            live,
            cursor: open_seq,
            from_store: false,
            store_until: 0,
            backlog: VecDeque::new(),
            caught_up: false,
            quiet: QUIET_FIRST,
            tracker,
            open,
        })
    }

    /// Resumes the stream `key` of `session` after event `after` (0: from the start).
    pub async fn resume(
        store: &EventStore,
        session: &str,
        key: &str,
        after: u64,
    ) -> Result<Self, StreamError> {
        // Registered before anything is read from the store, so no event falls between the
        // two (ADR 0025). The cancel subject needs the pool, known from the first record;
        // the live key does not.
        let mut live = store
            .router
            .follow(session, key, None)
            .map_err(|e| StreamError::Store(e.to_string()))?;
        // The pool running the call is in its first record: until then, any pool's.
        let first = match store
            .events
            .direct_get_first_for_subject(subjects::session_events_any_pool(session, key))
            .await
        {
            Ok(m) => m,
            Err(e) if not_found(&e.kind()) => return Err(StreamError::Expired),
            Err(e) => return Err(StreamError::Store(e.to_string())),
        };
        let open: StreamOpen = decode(&first.payload).map_err(|_| StreamError::Expired)?;
        // The replay's span links to the trace of the call it replays (ADR 0020).
        if let Some(call) = mcpbus_telemetry::TraceContext::from_nats(Some(&first.headers)) {
            mcpbus_telemetry::link(&tracing::Span::current(), &call);
        }
        // Only a gateway writes a stream's first record under the pool it names.
        let subject = subjects::session_events(&open.pool, session, key);
        if first.subject.as_str() != subject {
            return Err(StreamError::Expired);
        }
        // Cancels go by the client's request id, unchanged since the call started: one sent
        // before this point has already ended the call on the worker.
        live.cancel_on(subjects::cancel_request(
            &open.pool,
            session,
            &open.request_id,
        ));
        // The cursor event must still be there (and be ours): retention removes the oldest
        // events first, so if it is, everything after it is too.
        if after > first.sequence {
            match store.events.direct_get(after).await {
                Ok(m) if m.subject.as_str() == subject => {}
                Ok(_) => return Err(StreamError::Expired),
                Err(e) if not_found(&e.kind()) => return Err(StreamError::Expired),
                Err(e) => return Err(StreamError::Store(e.to_string())),
            }
        }
        let remaining = Duration::from_millis(open.deadline_ms.saturating_sub(unix_ms()));
        let mut tracker = CallTracker::new(
            open.call_id.clone(),
            open.tool.clone(),
            open.pool.clone(),
            Duration::from_millis(open.timeout_ms),
            Instant::now() + remaining,
        );
        // Resuming after the final response: nothing more will come, end after priming.
        // Otherwise the last event bounds what there is to replay.
        let mut store_until = 0;
        if let Ok(last) = store
            .events
            .direct_get_last_for_subject(subject.clone())
            .await
        {
            if last.sequence <= after && is_final(&last.payload) {
                tracker.mark_done();
            }
            store_until = last.sequence;
        }
        Ok(Self {
            queued_at: 0,
            store: store.clone(),
            key: key.to_owned(),
            subject,
            live,
            cursor: after.max(first.sequence),
            from_store: true,
            store_until,
            backlog: VecDeque::new(),
            caught_up: false,
            quiet: QUIET_FIRST,
            tracker,
            open,
        })
    }

    /// The client was already sent progress up to `floor` (from its `Last-Event-ID`).
    pub fn with_progress_floor(mut self, floor: Option<f64>) -> Self {
        if let Some(floor) = floor {
            self.tracker.raise_progress(floor);
        }
        self
    }

    /// The call's id.
    pub fn call_id(&self) -> &str {
        &self.key
    }

    /// The call's position in the calls stream (0 for a resumed stream).
    pub fn queued_at(&self) -> u64 {
        self.queued_at
    }

    /// When the call stops being waited for (Unix ms).
    pub fn deadline_ms(&self) -> u64 {
        self.open.deadline_ms
    }

    /// The JSON-RPC id of the request this stream answers.
    pub fn request_id(&self) -> &Value {
        &self.open.request_id
    }

    pub fn progress_token(&self) -> Option<&Value> {
        self.open.progress_token.as_ref()
    }

    /// The event id of the current position (the priming event's id).
    pub fn position(&self) -> EventId {
        EventId::Request {
            stream: self.key.clone(),
            seq: self.cursor,
            progress: self.tracker.progress(),
        }
    }

    /// The next update with its event id, or `None` once the final one was delivered.
    pub async fn next(&mut self) -> Option<(EventId, CallUpdate)> {
        loop {
            if self.tracker.is_done() {
                return None;
            }
            if self.from_store {
                match self.read_store().await {
                    Ok(Some(m)) => {
                        self.cursor = m.seq;
                        if let Some(update) = self.apply(&m.payload) {
                            // A resumed stream (not queued here) reads what it missed first.
                            if self.queued_at == 0 {
                                METRICS
                                    .replayed_events
                                    .with_label_values(&["request"])
                                    .inc();
                            }
                            return Some((self.position(), update));
                        }
                        continue;
                    }
                    Ok(None) => self.from_store = false,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading stored events failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
                            _ = tokio::time::sleep_until(self.tracker.deadline()) => {
                                return Some((self.position(), self.tracker.timed_out()))
                            }
                        }
                    }
                }
            }
            // Copies already waiting first; once there are none, copies the router had to
            // drop for this stream (its buffer full, or a reconnect) are read from the store
            // before waiting for more.
            let msg = match self.live.try_next() {
                Some(m) => m,
                None if self.live.lost() => {
                    self.read_store_from_here(0);
                    continue;
                }
                None => {
                    let cancelled = self.live.cancelled();
                    let woken = self.live.woken();
                    tokio::select! {
                    // Copies were dropped (buffer full, reconnect): back to the top, which
                    // reads them from the store.
                    _ = woken => continue,
                    // Nothing for a while: a copy may have been lost between servers.
                    _ = tokio::time::sleep(self.quiet) => {
                        self.quiet = (self.quiet * 2).min(QUIET_MAX);
                        self.read_store_from_here(0);
                        continue;
                    }
                    m = self.live.next() => match m {
                        Some(m) => {
                            self.quiet = QUIET_FIRST;
                            m
                        }
                        None => {
                            // The router stopped (the gateway is stopping): read the store.
                            self.read_store_from_here(0);
                            tokio::time::sleep(Duration::from_millis(250)).await;
                            continue;
                        }
                    },
                    _ = tokio::time::sleep_until(self.tracker.deadline()) => {
                        return Some((self.position(), self.tracker.timed_out()));
                    }
                    _ = cancelled => {
                        // The worker hears the same message; a call still queued is taken back.
                        if self.queued_at > 0 {
                            let _ = self.store.calls.delete_message(self.queued_at).await;
                        }
                        self.tracker.abandoned();
                        return None;
                    }
                    }
                }
            };
            let header = |name: &str| -> u64 {
                msg.headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .and_then(|v| v.as_str().parse().ok())
                    .unwrap_or(0)
            };
            let (seq, previous) = (header(headers::SEQUENCE), header(headers::LAST_SEQUENCE));
            if seq <= self.cursor {
                continue; // already delivered from the store
            }
            if previous > self.cursor {
                // We missed at least one: fetch it, and the rest up to this one, first.
                self.read_store_from_here(seq);
                continue;
            }
            self.cursor = seq;
            if let Some(update) = self.apply(&msg.payload) {
                return Some((self.position(), update));
            }
        }
    }

    /// Switches to reading the store after the cursor, up to `until` if known (else 0).
    fn read_store_from_here(&mut self, until: u64) {
        self.from_store = true;
        self.store_until = until;
        self.backlog.clear();
        self.caught_up = false;
    }

    /// The next stored event after the cursor, or `None` when the store has no more: from
    /// the bulk backlog, a new bulk read when the span is long, else one direct get (also
    /// when a bulk read fails: the bus may not allow it, ADR 0024).
    async fn read_store(&mut self) -> Result<Option<Stored>, StreamError> {
        if let Some(event) = self.backlog.pop_front() {
            return Ok(Some(event));
        }
        if std::mem::take(&mut self.caught_up) {
            return Ok(None);
        }
        if self.store_until.saturating_sub(self.cursor) > DIRECT_GET_SPAN {
            let read = replay::read_after(
                &self.store.js,
                topology::EVENTS_STREAM,
                &self.subject,
                self.cursor,
            )
            .await;
            match read {
                Ok(read) => {
                    self.backlog = read.events.into();
                    let first = self.backlog.pop_front();
                    self.caught_up = first.is_some() && !read.more;
                    return Ok(first);
                }
                Err(e) => tracing::debug!(error = %e, "bulk read failed; reading one by one"),
            }
        }
        match self
            .store
            .events
            .direct_get_next_for_subject(self.subject.clone(), Some(self.cursor + 1))
            .await
        {
            Ok(m) => Ok(Some(Stored {
                seq: m.sequence,
                payload: m.payload,
            })),
            Err(e) if not_found(&e.kind()) => Ok(None),
            Err(e) => Err(StreamError::Store(e.to_string())),
        }
    }

    /// Parses a stored event once: as a reply, which nearly all are. Only what is not a reply
    /// is looked at again, to tell the stream's `open` record (one per stream, which has no
    /// `instance` and no reply `type`) from an unreadable event. Parsing each event twice
    /// cost a resume of 1,000 events a visible share of its time (issue 18, P4).
    fn apply(&mut self, payload: &[u8]) -> Option<CallUpdate> {
        match decode::<CallReply>(payload) {
            Ok(reply) => self.tracker.observe(reply),
            Err(_) if is_open(payload) => None,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable stored event");
                None
            }
        }
    }
}

/// Whether a stored event is a stream's `open` record.
fn is_open(payload: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Kind<'_>>(payload)
        .is_ok_and(|k| k.kind.as_deref() == Some(StreamOpen::KIND))
}

/// Whether a stored event is a call's final result or error.
fn is_final(payload: &[u8]) -> bool {
    decode::<CallReply>(payload)
        .is_ok_and(|r| matches!(r.event, CallEvent::Result { .. } | CallEvent::Error { .. }))
}

/// Stores the `open` record and returns its sequence.
async fn store_open(
    store: &EventStore,
    subject: &str,
    open: &StreamOpen,
    until: tokio::time::Instant,
) -> Result<u64, RouteError> {
    let mut hdrs = async_nats::HeaderMap::new();
    hdrs.insert(headers::MSG_ID, format!("{}:open", open.call_id).as_str());
    mcpbus_telemetry::inject_current(&mut hdrs);
    // The stream registered with the router before this (ADR 0025), so a reply published
    // as soon as the call is queued reaches it. Retried across a leader change under the
    // same `Nats-Msg-Id` (ADR 0031).
    let payload = encode(open);
    let stored = failover::retry(until, Repeat::Always, || {
        failover::store_once(
            &store.nats,
            &store.js,
            subject.to_owned(),
            hdrs.clone(),
            payload.clone(),
        )
    })
    .await;
    match stored {
        Ok(ack) => Ok(ack.sequence),
        Err(GaveUp::Failed(e)) if e.kind() == PublishErrorKind::StreamNotFound => Err(
            RouteError::Publish("the session events stream is missing or has no leader".into()),
        ),
        Err(GaveUp::Failed(e)) => Err(open_error(e)),
        Err(unanswered) => Err(RouteError::Publish(unanswered.to_string())),
    }
}

/// The events stream refusing the `open` record for its size limits (a huge request id or
/// progress token, ADR 0007), or the bus failing.
fn open_error<E: std::error::Error + 'static>(e: E) -> RouteError {
    use crate::store_limits::{Store, StoreRefused};
    match StoreRefused::classify(Store::Events, &e) {
        Some(refused) => RouteError::Store(refused),
        None => RouteError::Publish(e.to_string()),
    }
}
