//! Session-lane sessions (MCP 2025-03-26 .. 2025-11-25), stored in JetStream KV.
//!
//! A session is created by `initialize` on one node and read by whichever node gets the next
//! request, so nothing about it lives in gateway memory. The KV bucket's age limit is the idle
//! timeout; records are re-put (at most once per [`TOUCH_AFTER`]) while the session is used.

mod id;
mod signals;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use bus_schema::principal::Principal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use id::SessionId;
pub use signals::{publish as publish_signal, SessionSignals, StandaloneSlot};

use crate::store_limits::{has_room, Store, StoreRefused};

/// Re-put a used session once its record is this old, so an active session never reaches the
/// bucket's age limit while an idle one does. Bounded write load: one put per hour per session.
pub const TOUCH_AFTER: Duration = Duration::from_secs(3600);

/// What a session remembers from `initialize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The negotiated MCP revision.
    pub protocol_version: String,
    #[serde(default)]
    pub client_info: Value,
    #[serde(default)]
    pub client_capabilities: Value,
    pub created_ms: u64,
    /// Set by `logging/setLevel`: the lowest severity forwarded to this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// URIs of `resources/subscribe`: their `notifications/resources/updated` reach this
    /// session's standalone stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_subscriptions: Vec<String>,
    /// Who initialized the session: only they may use it (ADR 0010). `None` when the
    /// gateway runs without auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
}

impl SessionRecord {
    /// Whether `principal` owns this session. Another principal is told the session does not
    /// exist, so a leaked or guessed session id is worth nothing to anyone else.
    pub fn owned_by(&self, principal: Option<&Principal>) -> bool {
        self.principal.as_ref().map(Principal::key) == principal.map(Principal::key)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("session store unavailable: {0}")]
    Store(#[source] async_nats::Error),
    #[error("session record is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The sessions bucket refused the record for its size limits (ADR 0007).
    #[error(transparent)]
    Refused(#[from] StoreRefused),
}

/// A failed write: the bucket's size limits by their JetStream code, or the store.
fn write_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> SessionError {
    match StoreRefused::classify(Store::Sessions, &e) {
        Some(refused) => SessionError::Refused(refused),
        None => SessionError::Store(e.into()),
    }
}

/// Sessions in the `mcpbus-sessions` bucket.
#[derive(Clone)]
pub struct SessionStore {
    kv: kv::Store,
}

impl SessionStore {
    pub fn new(kv: kv::Store) -> Self {
        Self { kv }
    }

    pub async fn create(&self, record: &SessionRecord) -> Result<SessionId, SessionError> {
        let id = SessionId::generate();
        let value = serde_json::to_vec(record)?;
        if !has_room(&self.kv, value.len())
            .await
            .map_err(SessionError::Store)?
        {
            return Err(SessionError::Refused(StoreRefused::Full(Store::Sessions)));
        }
        self.kv
            .create(id.as_str(), value.into())
            .await
            .map_err(write_error)?;
        Ok(id)
    }

    /// The live session, or `None` if it never existed, was deleted or expired.
    pub async fn get(&self, id: &SessionId) -> Result<Option<SessionRecord>, SessionError> {
        let entry = self
            .kv
            .entry(id.as_str())
            .await
            .map_err(|e| SessionError::Store(e.into()))?;
        let Some(entry) = entry else { return Ok(None) };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let record: SessionRecord = serde_json::from_slice(&entry.value)?;
        let age_ms =
            now_ms().saturating_sub((entry.created.unix_timestamp_nanos() / 1_000_000) as u64);
        if age_ms > TOUCH_AFTER.as_millis() as u64 {
            // Conditional on the revision, so a concurrent DELETE is never undone.
            if let Err(e) = self
                .kv
                .update(id.as_str(), entry.value, entry.revision)
                .await
            {
                tracing::debug!(error = %e, "session touch skipped");
            }
        }
        Ok(Some(record))
    }

    /// Changes a live session's record. Returns false if the session is gone. Conditional
    /// on the revision read, so a concurrent DELETE is never undone (a concurrent change
    /// makes this one fail with a store error rather than overwrite it).
    pub async fn modify(
        &self,
        id: &SessionId,
        change: impl FnOnce(&mut SessionRecord),
    ) -> Result<bool, SessionError> {
        let entry = self
            .kv
            .entry(id.as_str())
            .await
            .map_err(|e| SessionError::Store(e.into()))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(false);
        };
        let mut record: SessionRecord = serde_json::from_slice(&entry.value)?;
        change(&mut record);
        let value = serde_json::to_vec(&record)?;
        self.kv
            .update(id.as_str(), value.into(), entry.revision)
            .await
            .map_err(write_error)?;
        Ok(true)
    }

    /// Removes a session's record by purging its key from the bucket's stream, for a
    /// connection that may not write the bucket (the operator, ADR 0021). Returns whether it
    /// existed.
    pub async fn purge(&self, id: &SessionId) -> Result<bool, SessionError> {
        if self.get(id).await?.is_none() {
            return Ok(false);
        }
        self.kv
            .stream
            .purge()
            .filter(format!("{}{}", self.kv.prefix, id.as_str()))
            .await
            .map_err(|e| SessionError::Store(e.into()))?;
        Ok(true)
    }

    /// Ends a session. Returns whether it existed.
    pub async fn delete(&self, id: &SessionId) -> Result<bool, SessionError> {
        if self.get(id).await?.is_none() {
            return Ok(false);
        }
        self.kv
            .delete(id.as_str())
            .await
            .map_err(|e| SessionError::Store(e.into()))?;
        Ok(true)
    }
}

/// How an ending session's record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// A KV delete: what a gateway, which writes the bucket, does for `DELETE`.
    Delete,
    /// A purge of the key from the bucket's stream: what the operator does, who may not write
    /// the bucket (ADR 0021).
    Purge,
}

/// Ends session `id` everywhere, as a client's `DELETE` does (ADR 0003, point 5; ADR 0008):
/// its record goes, its streams end on every gateway, its stored events are purged.
/// Returns whether it existed. The gateways call it for `DELETE`, the operator's
/// `mcpbusctl purge-session` with its own connection (ADR 0021).
pub async fn end(
    sessions: &SessionStore,
    nats: &async_nats::Client,
    events: &async_nats::jetstream::stream::Stream,
    id: &SessionId,
    removal: Removal,
) -> Result<bool, SessionError> {
    let existed = match removal {
        Removal::Delete => sessions.delete(id).await?,
        Removal::Purge => sessions.purge(id).await?,
    };
    if !existed {
        return Ok(false);
    }
    signals::publish(nats, id, bus_schema::messages::SessionEvent::Ended).await;
    crate::stream::purge_session_events(events, id.as_str()).await;
    Ok(true)
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
