//! What the 2025 session lane adds: `initialize` creates a session in KV, `logging/setLevel`
//! and `resources/subscribe` change it, `DELETE` ends it with its stored events.

use bus_schema::mcp::ProtocolVersion;
use bus_schema::messages::SessionEvent;
use serde_json::{json, Value};

use super::caller::Caller;
use super::error::CoreError;
use super::limits::Limited;
use super::outcome::Outcome;
use super::server_info::initialize_result;
use crate::app::App;
use crate::policy::Item;
use crate::session::{now_ms, Removal, SessionId, SessionRecord};
use bus_schema::mcp::LogLevel;

/// `initialize`: a new session with the negotiated revision.
pub async fn initialize(
    app: &App,
    caller: &Caller,
    requested: &str,
    client_info: Value,
    capabilities: Value,
) -> Result<Outcome, CoreError> {
    app.quotas.new_session(&caller.client)?;
    let negotiated = ProtocolVersion::negotiate_session(requested);
    let record = SessionRecord {
        protocol_version: negotiated.to_string(),
        client_info,
        client_capabilities: capabilities,
        created_ms: now_ms(),
        log_level: None,
        resource_subscriptions: Vec::new(),
        principal: caller.principal.clone(),
    };
    let session = app.sessions.create(&record).await?;
    tracing::info!(protocol = %negotiated, "session created");
    Ok(Outcome::Initialized {
        session,
        result: initialize_result(negotiated),
    })
}

/// `logging/setLevel`: the lowest severity forwarded to this session from now on.
pub async fn set_log_level(
    app: &App,
    caller: &Caller,
    level: LogLevel,
) -> Result<Outcome, CoreError> {
    let outcome = modify(app, caller, |s| {
        s.log_level = Some(level.as_str().to_owned())
    })
    .await?;
    // Server-wide messages on the session's standalone stream follow it from now (ADR 0023).
    if let Some(session) = caller.session_id() {
        app.signals
            .signal(session, SessionEvent::LogLevelChanged)
            .await;
    }
    Ok(outcome)
}

/// `resources/subscribe` and `resources/unsubscribe`.
pub async fn subscribe(
    app: &App,
    caller: &Caller,
    uri: &str,
    on: bool,
) -> Result<Outcome, CoreError> {
    // A resource the caller may not read is one it cannot follow either.
    let pool = app
        .catalog
        .snapshot()
        .resource_route(uri)
        .map(|r| r.pool.clone());
    let view = app.policy.view(caller.principal.as_ref());
    if on
        && !view.allows(
            Item::Resource,
            uri,
            pool.as_ref().map_or("", |p| p.as_str()),
        )
    {
        return Err(CoreError::ResourceNotFound {
            uri: uri.to_owned(),
        });
    }
    if let Some((_, record)) = &caller.session {
        let subscribed = &record.resource_subscriptions;
        if on && !subscribed.iter().any(|u| u == uri) {
            Limited::ResourceSubscriptions.check(subscribed.len() + 1)?;
        }
    }
    let outcome = modify(app, caller, |s| {
        s.resource_subscriptions.retain(|u| u != uri);
        if on {
            s.resource_subscriptions.push(uri.to_owned());
        }
    })
    .await?;
    // The session's standalone stream, on whichever node, re-reads them once.
    if let Some(session) = caller.session_id() {
        let changed = SessionEvent::SubscriptionsChanged;
        app.signals.signal(session, changed).await;
    }
    Ok(outcome)
}

async fn modify(
    app: &App,
    caller: &Caller,
    change: impl FnOnce(&mut SessionRecord),
) -> Result<Outcome, CoreError> {
    let session = caller.session_id().ok_or(CoreError::SessionNotFound)?;
    match app.sessions.modify(session, change).await? {
        true => Ok(Outcome::done(json!({}))),
        false => Err(CoreError::SessionNotFound),
    }
}

/// Ends a session; its stored events go with it (ADR 0003, point 5).
pub async fn end(app: &App, session: &SessionId) -> Result<(), CoreError> {
    let (sessions, events) = (&app.sessions, &app.events.events);
    let ended = crate::session::end(sessions, &app.nats, events, session, Removal::Delete);
    if !ended.await? {
        return Err(CoreError::SessionNotFound);
    }
    tracing::info!("session ended by client");
    Ok(())
}
