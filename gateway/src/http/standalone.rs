//! `GET /mcp` in the session lane: the standalone stream of session-wide notifications, or
//! (with `Last-Event-ID`) the resumption of any stream of the session, on any node.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tracing::Instrument;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use bus_schema::mcp::{code, notification as note, LogLevel};
use bus_schema::messages::BroadcastKind;
use futures::StreamExt;
use serde_json::{json, Value};

use super::decorate::Decoration;
use super::guard;
use super::jsonrpc::{error_response, notification};
use super::render;
use super::reply::{CallReply, RETRY_AFTER_RELEASE};
use super::session_lane::{check_version_header, find_session};
use super::sse::{self, Frame};
use super::wire::McpError;
use crate::app::App;
use crate::core::{notification_for, CallFeed, CallPlan, Caller, CoreError, Delivery, Origin};
use crate::metrics::METRICS;
use crate::session::{SessionId, SessionRecord, SessionStore, StandaloneSlot};
use crate::stream::{BroadcastItem, EventId, Follower, RequestStream, StreamError};

pub async fn get(app: &App, origin: Origin, headers: &HeaderMap) -> Response {
    if !guard::accepts(headers).sse {
        let e = McpError::new(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "Not Acceptable: GET /mcp opens an SSE stream; Accept must list text/event-stream",
        );
        return error_response(&Value::Null, &e);
    }
    if let Err(e) = check_version_header(headers) {
        return error_response(&Value::Null, &e);
    }
    let caller = match find_session(app, origin, headers).await {
        Ok(caller) => caller,
        Err(e) => return error_response(&Value::Null, &e),
    };
    let last = headers.get(header::HeaderName::from_static("last-event-id"));
    let Some(raw) = last else {
        return standalone(app, &caller, Follower::live(&app.broadcast), false).await;
    };
    match raw.to_str().ok().and_then(EventId::parse) {
        Some(EventId::Request {
            stream,
            seq,
            progress,
        }) => {
            METRICS.stream_resumes.with_label_values(&["request"]).inc();
            // The replay's own span; the SSE stream that follows keeps the HTTP span open.
            let span = tracing::info_span!(
                "replay",
                otel.name = "mcpbus.replay",
                mcpbus.replay.after = seq,
                call_id = %stream,
            );
            resume_request(app, &caller, &stream, seq, progress)
                .instrument(span)
                .await
        }
        Some(EventId::Standalone { seq }) => {
            METRICS
                .stream_resumes
                .with_label_values(&["standalone"])
                .inc();
            let (follower, replayed) = Follower::resume(&app.broadcast, seq).await;
            if replayed.is_err() {
                METRICS.events_expired.inc();
            }
            standalone(app, &caller, follower, replayed.is_err()).await
        }
        None => error_response(
            &Value::Null,
            &McpError::invalid_request("Bad Request: Last-Event-ID was not issued by this server"),
        ),
    }
}

/// A request's stream, from after `after`, on whichever node the client came back to, sending
/// no progress at or below `progress`, the highest the client was sent.
async fn resume_request(
    app: &App,
    caller: &Caller,
    stream: &str,
    after: u64,
    progress: Option<f64>,
) -> Response {
    let session = caller
        .session_id()
        .expect("session-lane callers have sessions");
    match RequestStream::resume(&app.events, session.as_str(), stream, after).await {
        Ok(s) => {
            let s = s.with_progress_floor(progress);
            let (id, token) = (s.request_id().clone(), s.progress_token().cloned());
            let feed = CallFeed::Stored(Box::new(s));
            let plan = CallPlan::new(&app.request_state, caller, id, feed, Delivery::Stream)
                .with_updates(token, caller.min_log);
            // Session results carry no caching hints, so no ttl.
            let decoration = Decoration::new(&caller.profile, 0);
            CallReply::new(plan, caller.profile.lane, decoration)
                .sse(app.config.sse_keep_alive, app.release.clone())
        }
        Err(StreamError::Expired) => {
            METRICS.events_expired.inc();
            let retention = app.config.event_retention.as_secs();
            let e = McpError::new(
                StatusCode::GONE,
                code::INVALID_REQUEST,
                format!(
                    "Gone: the events of this stream after the given Last-Event-ID are no longer \
                     retained (retention {retention} s); send the request again"
                ),
            )
            .with_data(json!({"reason": "events_expired", "retentionSecs": retention}));
            error_response(&Value::Null, &e)
        }
        Err(e) => render::error(&Value::Null, &caller.profile, &CoreError::Stream(e)),
    }
}

/// The standalone stream: a priming event, then cluster-wide notifications as they are
/// stored. `resync` says the client's cursor was past retention: it gets a fresh
/// `list_changed` and a warning instead of a silent gap. Opening it replaces the session's
/// other standalone stream, on whichever node it is; the session's end ends it.
async fn standalone(app: &App, caller: &Caller, follower: Follower, resync: bool) -> Response {
    let permit = match super::listen::stream_slot(app) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    let (session, record) = caller
        .session
        .clone()
        .expect("session-lane callers have sessions");
    let slot = app.signals.open_standalone(&session).await;
    let position = EventId::Standalone {
        seq: follower.cursor(),
    }
    .to_string();
    let mut opening = vec![Frame::Priming(position.clone())];
    if resync {
        let gap = notification(
            note::MESSAGE,
            json!({"level": "warning", "logger": "mcpbus", "data": {
                "reason": "events_expired",
                "message": "notifications after your Last-Event-ID are no longer retained; lists may have changed",
            }}),
        );
        for msg in [gap, notification(note::TOOLS_LIST_CHANGED, json!({}))] {
            opening.push(Frame::Message {
                id: Some(position.clone()),
                data: msg.to_string(),
            });
        }
    }
    let end = slot.end.clone();
    let view = Arc::new(SessionView {
        settings: Mutex::new(ViewSettings::of(&record)),
        sessions: app.sessions.clone(),
        session,
        slot,
    });
    let render = move |item: Arc<BroadcastItem>| {
        let view = view.clone();
        async move {
            let msg = view.message(&item.kind).await?;
            METRICS
                .broadcast_deliveries
                .with_label_values(&[item.kind.subject_token()])
                .inc();
            Some(Frame::Message {
                id: Some(EventId::Standalone { seq: item.seq }.to_string()),
                data: msg.to_string(),
            })
        }
    };
    let live = sse::follow(
        follower,
        app.release.clone(),
        end,
        render,
        Frame::Retry(RETRY_AFTER_RELEASE),
    );
    sse::response(
        "standalone",
        app.config.sse_keep_alive,
        futures::stream::iter(opening).chain(live),
        permit,
    )
}

/// What one standalone stream knows of its session: the resource subscriptions and the log
/// level, re-read only when a signal says they changed, so a `resources/updated` or a
/// server-wide message costs no store read.
struct SessionView {
    settings: Mutex<ViewSettings>,
    sessions: SessionStore,
    session: SessionId,
    /// Held for the stream's life: registers it with the session signals.
    slot: StandaloneSlot,
}

struct ViewSettings {
    uris: Vec<String>,
    /// The lowest level of server-wide message shown; every level without `logging/setLevel`.
    min_log: LogLevel,
}

impl ViewSettings {
    fn of(record: &SessionRecord) -> Self {
        Self {
            min_log: record
                .log_level
                .as_deref()
                .and_then(LogLevel::parse)
                .unwrap_or(LogLevel::DEBUG),
            uris: record.resource_subscriptions.clone(),
        }
    }
}

impl SessionView {
    /// What the stream shows for a broadcast event: every change, updates of resources
    /// the session subscribed to, and server-wide messages at or above its log level.
    async fn message(&self, kind: &BroadcastKind) -> Option<Value> {
        let wanted = |s: &ViewSettings| match kind {
            BroadcastKind::ResourceUpdated { uri } => s.uris.contains(uri),
            BroadcastKind::Message { level, .. } => *level >= s.min_log,
            _ => true,
        };
        if matches!(
            kind,
            BroadcastKind::ResourceUpdated { .. } | BroadcastKind::Message { .. }
        ) {
            if self.slot.stale.swap(false, Ordering::Relaxed) {
                // Past the cache: the signal may arrive before the watch brings the change.
                let record = self
                    .sessions
                    .get_fresh(&self.session)
                    .await
                    .ok()
                    .flatten()?;
                *self.settings.lock().expect("never poisoned") = ViewSettings::of(&record);
            }
            if !wanted(&self.settings.lock().expect("never poisoned")) {
                return None;
            }
        }
        let (method, params) = notification_for(kind);
        Some(notification(method, params))
    }
}
