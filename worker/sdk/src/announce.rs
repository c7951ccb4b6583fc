//! Server-wide messages from a worker (ADR 0023): a `notifications/message` for every
//! session-lane client's standalone stream, in the cluster, filtered by each session's log
//! level. A gateway checks, stores and confirms it; the logger shown is the pool's name.

use std::time::Duration;

use bus_schema::mcp::LogLevel;
use bus_schema::messages::{decode, encode, AnnounceReply, Announcement, WireError};
use bus_schema::names::PoolName;
use bus_schema::{subjects, PROTOCOL_VERSION};
use serde_json::Value;

/// How long to wait for a gateway's confirmation.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why an announcement was not stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// No gateway answered (none running, or the bus is down). It may still have been
    /// stored; sending it again with the same id stores it at most once.
    #[error("no gateway confirmed the announcement: {0}")]
    Unconfirmed(String),
    /// A gateway refused it (too large, malformed, over the pool's rate).
    #[error("announcement refused: {} ({})", .0.message, .0.code)]
    Refused(WireError),
}

/// A server-wide message to send. Sending the same value again (after
/// [`AnnounceError::Unconfirmed`]) stores it at most once: it keeps its id.
#[derive(Debug, Clone)]
pub struct Announce {
    id: String,
    pub level: LogLevel,
    /// Shown as `<pool>/<logger>`.
    pub logger: Option<String>,
    pub data: Value,
}

impl Announce {
    pub fn new(level: LogLevel, data: impl Into<Value>) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            level,
            logger: None,
            data: data.into(),
        }
    }

    pub fn logger(mut self, logger: impl Into<String>) -> Self {
        self.logger = Some(logger.into());
        self
    }

    /// Sends it on behalf of `pool` and waits until a gateway stored it. `nats` must be the
    /// worker's connection (its inbox prefix is its pool's: ADR 0013).
    pub async fn send(
        &self,
        nats: &async_nats::Client,
        pool: &PoolName,
    ) -> Result<(), AnnounceError> {
        let body = encode(&Announcement {
            protocol: PROTOCOL_VERSION,
            id: self.id.clone(),
            level: self.level,
            logger: self.logger.clone(),
            data: self.data.clone(),
        });
        let reply = tokio::time::timeout(TIMEOUT, nats.request(subjects::announce(pool), body))
            .await
            .map_err(|_| AnnounceError::Unconfirmed("timed out".into()))?
            .map_err(|e| AnnounceError::Unconfirmed(e.to_string()))?;
        let reply: AnnounceReply =
            decode(&reply.payload).map_err(|e| AnnounceError::Unconfirmed(e.to_string()))?;
        match reply.error {
            Some(e) => Err(AnnounceError::Refused(e)),
            None => Ok(()),
        }
    }
}
