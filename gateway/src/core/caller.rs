//! Who is calling: the caller's revision (its profile), what its client declared, and, on
//! the session lane, its session. Built by the edges, read by the core.

use bus_schema::mcp::{capability, meta, ProtocolVersion};
use bus_schema::principal::Principal;
use serde_json::Value;

use super::meta::meta_of;
use super::profile::Profile;
use crate::quota::ClientKey;
use std::sync::Arc;

use crate::session::{SessionId, SessionRecord};
use bus_schema::mcp::LogLevel;

/// The caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub profile: Profile,
    pub client_capabilities: Value,
    /// The session the request belongs to (session lane).
    /// Shared with the gateway's session cache (ADR 0025): a request copies no record.
    pub session: Option<(SessionId, Arc<SessionRecord>)>,
    /// Lowest log severity forwarded; `None` forwards no log messages.
    pub min_log: Option<LogLevel>,
    /// Who the access token names; `None` when the gateway runs without auth.
    pub principal: Option<Principal>,
    /// Whom quotas count this request against: the principal, else the client's address.
    pub client: ClientKey,
}

/// Who is at the other end of a request, as the edge established it before the core sees it.
#[derive(Debug, Clone)]
pub struct Origin {
    /// From the verified access token; `None` without auth.
    pub principal: Option<Principal>,
    pub client: ClientKey,
}

impl Caller {
    /// A session-lane caller: what the session negotiated at `initialize`. Without
    /// `logging/setLevel`, a session receives every log message.
    pub fn session(id: SessionId, record: impl Into<Arc<SessionRecord>>) -> Self {
        let record = record.into();
        let version = ProtocolVersion::parse(&record.protocol_version)
            .unwrap_or(ProtocolVersion::DEFAULT_SESSION);
        Self {
            profile: Profile::session(version),
            client_capabilities: record.client_capabilities.clone(),
            min_log: Some(
                record
                    .log_level
                    .as_deref()
                    .and_then(LogLevel::parse)
                    .unwrap_or(LogLevel::DEBUG),
            ),
            session: Some((id, record)),
            principal: None,
            client: ClientKey::unknown(),
        }
    }

    /// A session-lane caller before it has a session (`initialize`).
    pub fn initializing() -> Self {
        Self {
            profile: Profile::session(ProtocolVersion::newest_session()),
            client_capabilities: Value::Null,
            session: None,
            min_log: None,
            principal: None,
            client: ClientKey::unknown(),
        }
    }

    /// A 2026-07-28 caller: everything travels in each request's `_meta`. No log messages
    /// unless the request asks for a level.
    pub fn stateless(version: ProtocolVersion, params: &Value) -> Self {
        Self::stateless_with(
            version,
            meta_of(params, meta::CLIENT_CAPABILITIES)
                .cloned()
                .unwrap_or_default(),
            meta_of(params, meta::LOG_LEVEL)
                .and_then(Value::as_str)
                .and_then(LogLevel::parse),
        )
    }

    fn stateless_with(
        version: ProtocolVersion,
        client_capabilities: Value,
        min_log: Option<LogLevel>,
    ) -> Self {
        Self {
            profile: Profile::stateless(version),
            client_capabilities,
            session: None,
            min_log,
            principal: None,
            client: ClientKey::unknown(),
        }
    }

    /// The same caller, as the edge identified it (token check, client address).
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.principal = origin.principal;
        self.client = origin.client;
        self
    }

    /// The session id, on the session lane.
    pub fn session_id(&self) -> Option<&SessionId> {
        self.session.as_ref().map(|(id, _)| id)
    }

    /// Whether the client declared the 2026-07-28 tasks extension.
    pub fn takes_task_extension(&self) -> bool {
        self.client_capabilities
            .get(capability::EXTENSIONS)
            .and_then(|e| e.get(capability::TASKS_EXTENSION))
            .is_some()
    }
}
