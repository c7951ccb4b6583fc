//! Size limits of every stream and bucket mcpbus declares (ADR 0007), and how a refusal by
//! a full store is recognised. (Applying them to a store that exists is
//! `topology::ensure_limits`.)
//!
//! Every stream and KV bucket has a byte limit and a message (KV: value) size limit, so that
//! no client can fill the JetStream store, whatever it sends. The defaults below are sized in
//! ADR 0007; a gateway can override the ones a client can fill (`--store-*` flags). Workers
//! declare missing stores with these same defaults and never change existing ones.
//!
//! Both limits are JetStream stream settings that nats-server 2.9.10 knows (`max_bytes`,
//! `max_msg_size`), and a refusal carries a JetStream error code, so nothing here matches
//! error text.

use async_nats::jetstream::{self, stream, ErrorCode};

const KIB: i64 = 1024;
const MIB: i64 = 1024 * KIB;
const GIB: i64 = 1024 * MIB;

/// The two size limits of one stream or bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Bytes the stream may hold (`max_bytes`). What happens at the limit depends on the
    /// stream's discard policy: `New` refuses the message, `Old` drops the oldest.
    pub max_bytes: i64,
    /// Largest message (for a KV bucket: largest value plus key and headers) it accepts
    /// (`max_msg_size`). Always refused, whatever the discard policy.
    pub max_msg_size: i32,
}

impl StoreLimits {
    /// `max_msg_size` is capped at `max_bytes`: a message larger than the whole store could
    /// never be stored anyway, and nats-server refuses such a configuration.
    pub const fn new(max_bytes: i64, max_msg_size: i32) -> Self {
        let max_msg_size = if (max_msg_size as i64) > max_bytes {
            max_bytes as i32
        } else {
            max_msg_size
        };
        Self {
            max_bytes,
            max_msg_size,
        }
    }

    /// Sets these limits on a stream definition.
    pub fn apply(self, config: &mut stream::Config) {
        config.max_bytes = self.max_bytes;
        config.max_message_size = self.max_msg_size;
    }

    /// The limits a stream definition carries.
    pub fn of(config: &stream::Config) -> Self {
        Self {
            max_bytes: config.max_bytes,
            max_msg_size: config.max_message_size,
        }
    }
}

/// Calls queue: 1 GiB, 1 MiB a call. A call is its tool arguments; 1 MiB is nats-server's
/// default `max_payload`, so no larger call could be published anyway. 1 GiB holds 1,000
/// calls of the largest size or about a million typical (1 KiB) ones, the message limit.
pub const CALLS_LIMITS: StoreLimits = StoreLimits::new(GIB, MIB as i32);

/// Session events: 1 GiB, 1 MiB an event. Retention × rate: one hour of 300 events/s of
/// 1 KiB is 1 GiB. A tool result travels as one event, so the event size matches the call
/// size. Discard-old: at the limit the oldest events go, and only replay that far back is lost.
pub const EVENTS_LIMITS: StoreLimits = StoreLimits::new(GIB, MIB as i32);

/// Broadcast: 64 MiB, 64 KiB a message. At most 10,000 messages (`list_changed`,
/// `resources/updated` with one URI), each well under 1 KiB: 64 MiB is room for all of them
/// at 6 KiB each. Discard-old, like the events.
pub const BROADCAST_LIMITS: StoreLimits = StoreLimits::new(64 * MIB, 64 * KIB as i32);

/// Sessions bucket: 1 GiB, 256 KiB a record. A real client's record (clientInfo,
/// capabilities, subscriptions) is 1 to 4 KiB: 1 GiB is about 250,000 such sessions, and at
/// least 4,096 of the largest. Full: `initialize` is refused with 503 until sessions end
/// or idle out.
pub const SESSIONS_LIMITS: StoreLimits = StoreLimits::new(GIB, 256 * KIB as i32);

/// Tasks bucket: 256 MiB, 64 KiB a record. A task record is its status and ids, under
/// 1 KiB (the result lives in the events stream): 256 MiB is some 250,000 tasks.
pub const TASKS_LIMITS: StoreLimits = StoreLimits::new(256 * MIB, 64 * KIB as i32);

/// Worker registry: 64 MiB, 64 KiB a record. One record per live worker instance, under
/// 1 KiB: room for tens of thousands of workers.
pub const WORKERS_LIMITS: StoreLimits = StoreLimits::new(64 * MIB, 64 * KIB as i32);

/// Catalogues: 256 MiB, 1 MiB a catalogue. One record per pool and catalogue digest; a pool
/// with hundreds of tools and their schemas stays under nats-server's 1 MiB payload limit.
pub const CATALOG_LIMITS: StoreLimits = StoreLimits::new(256 * MIB, MIB as i32);

/// Gateways bucket: 16 MiB, 64 KiB a record. One record per live gateway node, under
/// 1 KiB, written only by gateways: room for thousands of nodes.
pub const GATEWAYS_LIMITS: StoreLimits = StoreLimits::new(16 * MIB, 64 * KIB as i32);

/// Cluster settings: 1 MiB, 64 KiB a value. A handful of generated keys.
pub const CLUSTER_LIMITS: StoreLimits = StoreLimits::new(MIB, 64 * KIB as i32);

/// Why JetStream refused to store a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreRefusal {
    /// The stream is at its byte or message limit (discard-new), or the server or account
    /// is out of storage. It clears as entries age out or are removed.
    Full,
    /// The message is larger than the stream's `max_msg_size` (or the server's
    /// `max_payload`). Sending it again can never succeed.
    TooLarge,
}

/// JetStream's "store failed" code: 2.9 to 2.14 report a stream at its `max_bytes`,
/// `max_msgs` or per-subject limit with it (the text says which).
const STREAM_STORE_FAILED: ErrorCode = ErrorCode(10077);

/// Whether `err` (or any error it wraps) is JetStream refusing a message for its size or a
/// full store, read from the JetStream error code. `None` for every other failure.
pub fn refusal(err: &(dyn std::error::Error + 'static)) -> Option<StoreRefusal> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(js) = e.downcast_ref::<jetstream::Error>() {
            return match js.error_code() {
                ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM => Some(StoreRefusal::TooLarge),
                STREAM_STORE_FAILED
                | ErrorCode::INSUFFICIENT_RESOURCES
                | ErrorCode::ACCOUNT_RESOURCES_EXCEEDED => Some(StoreRefusal::Full),
                _ => None,
            };
        }
        if let Some(p) = e.downcast_ref::<jetstream::context::PublishError>() {
            if p.kind() == jetstream::context::PublishErrorKind::MaxPayloadExceeded {
                return Some(StoreRefusal::TooLarge);
            }
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_size_never_exceeds_the_store() {
        let l = StoreLimits::new(1000, 4096);
        assert_eq!((l.max_bytes, l.max_msg_size), (1000, 1000));
        let l = StoreLimits::new(1 << 20, 512);
        assert_eq!((l.max_bytes, l.max_msg_size), (1 << 20, 512));
    }

    #[test]
    fn refusals_are_read_from_the_jetstream_code() {
        let js = |code: u64| -> jetstream::Error {
            serde_json::from_value(serde_json::json!({
                "code": 503, "err_code": code, "description": "x"
            }))
            .unwrap()
        };
        let wrapped = |e: jetstream::Error| {
            jetstream::context::PublishError::with_source(
                jetstream::context::PublishErrorKind::Other,
                e,
            )
        };
        assert_eq!(refusal(&wrapped(js(10077))), Some(StoreRefusal::Full));
        assert_eq!(refusal(&wrapped(js(10023))), Some(StoreRefusal::Full));
        assert_eq!(refusal(&wrapped(js(10054))), Some(StoreRefusal::TooLarge));
        assert_eq!(refusal(&wrapped(js(10071))), None);
        let too_big = jetstream::context::PublishError::new(
            jetstream::context::PublishErrorKind::MaxPayloadExceeded,
        );
        assert_eq!(refusal(&too_big), Some(StoreRefusal::TooLarge));
    }
}
