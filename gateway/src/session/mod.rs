//! Session-lane sessions (MCP 2025-03-26 .. 2025-11-25), stored in JetStream KV.
//!
//! A session is created by `initialize` on one node and read by whichever node gets the next
//! request: the bucket is the truth. A gateway keeps the records it serves in a cache kept
//! true by a watch on the bucket (`cache.rs`, ADR 0025), so that a request on a known
//! session reads no KV; every write still reads the true revision from KV. The KV bucket's
//! age limit is the idle timeout; records are re-put (at most once per [`TOUCH_AFTER`]) while
//! the session is used.

mod cache;
mod id;
mod signals;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use bus_schema::failover::{self, GaveUp, Repeat};
use bus_schema::principal::Principal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use cache::{CacheSettings, SessionCache, MAX_BYTES as CACHE_MAX_BYTES};
pub use id::SessionId;
pub use signals::{publish as publish_signal, SessionSignals, StandaloneSlot};

use crate::leader_read;
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
fn write_error<E: std::error::Error + Send + Sync + 'static>(e: GaveUp<E>) -> SessionError {
    match e {
        GaveUp::Failed(e) => match StoreRefused::classify(Store::Sessions, &e) {
            Some(refused) => SessionError::Refused(refused),
            None => SessionError::Store(e.into()),
        },
        unanswered => SessionError::Store(unanswered.into()),
    }
}

/// Sessions in the `mcpbus-sessions` bucket.
#[derive(Clone)]
pub struct SessionStore {
    kv: kv::Store,
    /// A gateway's cache of the records it serves; `None` for the operator's tools.
    cache: Option<SessionCache>,
}

impl SessionStore {
    /// The bucket alone, read on every request (the operator's tools).
    pub fn new(kv: kv::Store) -> Self {
        Self { kv, cache: None }
    }

    /// The bucket with a gateway's cache in front of it, and its watch until `stop`.
    pub fn cached(
        kv: kv::Store,
        cache: SessionCache,
        stop: tokio_util::sync::CancellationToken,
    ) -> Self {
        cache.start_watch(kv.clone(), stop);
        Self {
            kv,
            cache: Some(cache),
        }
    }

    /// The cache, to tell it what the session signals say.
    pub fn cache(&self) -> Option<&SessionCache> {
        self.cache.as_ref()
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
        let value = bytes::Bytes::from(value);
        failover::retry(failover::deadline(), Repeat::IfNotStored, || {
            self.kv.create(id.as_str(), value.clone())
        })
        .await
        .map_err(write_error)?;
        Ok(id)
    }

    /// The live session, or `None` if it never existed, was deleted or expired: from the
    /// cache when it may answer (see `cache.rs` for when), else from KV.
    pub async fn get(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, SessionError> {
        let ticket = match self.cache.as_ref().map(|c| c.lookup(id.as_str())) {
            Some(cache::Lookup::Live(record)) => return Ok(Some(record)),
            Some(cache::Lookup::Gone) => return Ok(None),
            Some(cache::Lookup::Miss(ticket)) => Some(ticket),
            None => None,
        };
        let read = self.read(id).await?;
        if let Some(ticket) = ticket {
            ticket.fill(
                read.as_ref()
                    .map(|r| (r.record.clone(), r.revision, r.written_ms, r.bytes)),
            );
        }
        Ok(read.map(|r| r.record))
    }

    /// The live session read from KV, past the cache: for a change that must be seen at once
    /// (a session's subscriptions changed, by its signal) and before ending a session.
    pub async fn get_fresh(
        &self,
        id: &SessionId,
    ) -> Result<Option<Arc<SessionRecord>>, SessionError> {
        Ok(self.read(id).await?.map(|r| r.record))
    }

    /// Reads the record from KV (a replica, or the leader if the replica has none: see
    /// `leader_read.rs`), touching it when due.
    async fn read(&self, id: &SessionId) -> Result<Option<Read>, SessionError> {
        let entry = leader_read::entry_or_leader(&self.kv, id.as_str())
            .await
            .map_err(SessionError::Store)?;
        let Some(entry) = entry else { return Ok(None) };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let record: SessionRecord = serde_json::from_slice(&entry.value)?;
        let written_ms = (entry.created.unix_timestamp_nanos() / 1_000_000) as u64;
        let mut read = Read {
            record: Arc::new(record),
            revision: entry.revision,
            written_ms,
            bytes: entry.value.len(),
        };
        let age_ms = now_ms().saturating_sub(written_ms);
        if age_ms > TOUCH_AFTER.as_millis() as u64 {
            // Conditional on the revision, so a concurrent DELETE is never undone.
            match self
                .kv
                .update(id.as_str(), entry.value, entry.revision)
                .await
            {
                // The touched revision is the one to cache: its clock restarts.
                Ok(revision) => {
                    read.revision = revision;
                    read.written_ms = now_ms();
                }
                Err(e) => tracing::debug!(error = %e, "session touch skipped"),
            }
        }
        Ok(Some(read))
    }

    /// Changes a live session's record. Returns false if the session is gone. Conditional
    /// on the revision read, so a concurrent DELETE is never undone (a concurrent change
    /// makes this one fail with a store error rather than overwrite it).
    pub async fn modify(
        &self,
        id: &SessionId,
        change: impl FnOnce(&mut SessionRecord),
    ) -> Result<bool, SessionError> {
        // From the leader: the write below is conditional on the latest revision.
        let entry = leader_read::entry(&self.kv, id.as_str())
            .await
            .map_err(SessionError::Store)?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(false);
        };
        let mut record: SessionRecord = serde_json::from_slice(&entry.value)?;
        change(&mut record);
        let value = serde_json::to_vec(&record)?;
        let bytes = value.len();
        let value = bytes::Bytes::from(value);
        let revision = failover::retry(failover::deadline(), Repeat::IfNotStored, || {
            self.kv.update(id.as_str(), value.clone(), entry.revision)
        })
        .await
        .map_err(write_error)?;
        // This gateway serves its own change at once; others hear it from their watch.
        if let Some(cache) = &self.cache {
            cache.learn(
                id.as_str(),
                revision,
                Some(Arc::new(record)),
                now_ms(),
                bytes,
            );
        }
        Ok(true)
    }

    /// Removes a session's record by purging its key from the bucket's stream, for a
    /// connection that may not write the bucket (the operator, ADR 0021). Returns whether it
    /// existed.
    pub async fn purge(&self, id: &SessionId) -> Result<bool, SessionError> {
        if self.get_fresh(id).await?.is_none() {
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
        if self.get_fresh(id).await?.is_none() {
            return Ok(false);
        }
        self.kv
            .delete(id.as_str())
            .await
            .map_err(|e| SessionError::Store(e.into()))?;
        self.forget(id);
        Ok(true)
    }

    /// The session ended (here, or on any gateway by its `Ended` signal): gone for good,
    /// since session ids are never reused.
    pub fn forget(&self, id: &SessionId) {
        if let Some(cache) = &self.cache {
            cache.learn(id.as_str(), u64::MAX, None, 0, 0);
        }
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

/// A record as read from KV.
struct Read {
    record: Arc<SessionRecord>,
    revision: u64,
    written_ms: u64,
    bytes: usize,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
