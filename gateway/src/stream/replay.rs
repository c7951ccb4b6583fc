//! Reading many stored events of one subject at once (ADR 0024).
//!
//! A direct get reads one event per round trip: a client that missed 1,000 events waited
//! ~100 ms for them. When a read spans more than [`DIRECT_GET_SPAN`] sequences, the caller
//! comes here instead: a short-lived pull consumer on the stream, filtered on the one subject,
//! starting right after the cursor, without acks, in memory and on one replica. One round
//! trip creates it (its answer says how many events match), one fetches up to [`BATCH`] of
//! them, and its deletion is not waited for. Everything used works on nats-server 2.9.10.
//!
//! A resume that missed only a few events, and a client too slow for its live copies, keep
//! to direct gets, so a cluster sees a consumer only for the rare long backlog (NATS
//! maintainers advise against a consumer per client).
//! This module reads; it never writes, acknowledges or keeps anything on the server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::Context;
use bytes::Bytes;
use futures::StreamExt;

/// Reads spanning at most this many sequences take direct gets: below it, creating and
/// deleting a consumer costs more than it saves, and the cluster sees no consumer at all.
pub const DIRECT_GET_SPAN: u64 = 16;

/// Events read per consumer. A longer backlog takes another consumer from where this one
/// stopped.
const BATCH: usize = 1024;

/// Bytes read per consumer, whatever the count: what one resuming stream may hold in memory
/// beyond its live buffer. An event larger than this (a maximal 1 MiB event with its
/// headers) fails the bulk read, and the caller reads that one by direct get.
const BATCH_BYTES: usize = 1024 * 1024;

/// How long a consumer the gateway failed to delete (it died, or lost the bus) stays on the
/// server.
const ABANDONED_AFTER: Duration = Duration::from_secs(10);

/// The longest creating the consumer may take. Healthy servers answer in a millisecond or
/// two; a server that refuses it for want of permission (a bus configured before ADR 0024)
/// does not answer at all, and the client's 10 s request timeout would hold the stream.
const CREATE_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest the fetch may take: it has no server-side expiry.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// After a consumer could not be created, bulk reads stop for this long and streams read
/// one direct get per event, so that a bus that refuses them costs one wait per period,
/// not one per resume.
const PAUSE_AFTER_REFUSAL: Duration = Duration::from_secs(60);

/// Until when (Unix ms) bulk reads are paused: see [`PAUSE_AFTER_REFUSAL`].
static PAUSED_UNTIL_MS: AtomicU64 = AtomicU64::new(0);

/// One stored event.
#[derive(Debug)]
pub struct Stored {
    /// Its sequence in the stream.
    pub seq: u64,
    pub payload: Bytes,
}

/// What a bulk read found.
#[derive(Debug, Default)]
pub struct Backlog {
    /// The events after the cursor, in order.
    pub events: Vec<Stored>,
    /// Whether more matched when the last of these was sent: read again from it.
    pub more: bool,
}

/// Why a bulk read failed; the caller falls back to direct gets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BulkError {
    #[error("cannot create a replay consumer: {0}")]
    Create(String),
    #[error("bulk reads are paused after a refusal")]
    Paused,
    #[error("cannot fetch from a replay consumer: {0}")]
    Fetch(String),
}

/// The stored events of `filter` in `stream` after sequence `after`, up to [`BATCH`] of them.
pub async fn read_after(
    js: &Context,
    stream: &str,
    filter: &str,
    after: u64,
) -> Result<Backlog, BulkError> {
    if PAUSED_UNTIL_MS.load(Ordering::Relaxed) > crate::route::unix_ms() {
        return Err(BulkError::Paused);
    }
    let name = format!("mcpbus-replay-{}", uuid::Uuid::new_v4().simple());
    let config = pull::Config {
        name: Some(name.clone()),
        filter_subject: filter.to_owned(),
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        },
        ack_policy: AckPolicy::None,
        inactive_threshold: ABANDONED_AFTER,
        memory_storage: true,
        num_replicas: 1,
        ..Default::default()
    };
    let created =
        tokio::time::timeout(CREATE_TIMEOUT, js.create_consumer_on_stream(config, stream));
    let consumer = match created.await {
        Ok(Ok(consumer)) => consumer,
        failed => {
            let error = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "no answer".to_owned(),
            };
            let pause_ms = PAUSE_AFTER_REFUSAL.as_millis() as u64;
            PAUSED_UNTIL_MS.store(crate::route::unix_ms() + pause_ms, Ordering::Relaxed);
            tracing::warn!(%error, stream, "cannot create a replay consumer; replaying one event per direct get for a minute (does the bus allow it? ADR 0024)");
            return Err(BulkError::Create(error));
        }
    };
    let matched = consumer.cached_info().num_pending;
    let read = async {
        let mut backlog = Backlog {
            events: Vec::new(),
            more: matched > 0,
        };
        if matched == 0 {
            return Ok(backlog);
        }
        let wanted = usize::try_from(matched).unwrap_or(usize::MAX).min(BATCH);
        let mut messages = consumer
            .fetch()
            .max_messages(wanted)
            .max_bytes(BATCH_BYTES)
            .messages()
            .await
            .map_err(|e| BulkError::Fetch(e.to_string()))?;
        while backlog.events.len() < wanted {
            let message = match messages.next().await {
                Some(Ok(m)) => m,
                // Past the byte limit, or the server's answer for "no more": keep what came.
                Some(Err(e)) if backlog.events.is_empty() => {
                    return Err(BulkError::Fetch(e.to_string()))
                }
                Some(Err(_)) | None => break,
            };
            let info = message
                .info()
                .map_err(|e| BulkError::Fetch(e.to_string()))?;
            // What still matches after this one, counted when it was sent.
            backlog.more = info.pending > 0;
            backlog.events.push(Stored {
                seq: info.stream_sequence,
                payload: message.payload.clone(),
            });
            if !backlog.more {
                break;
            }
        }
        if backlog.events.is_empty() {
            return Err(BulkError::Fetch(format!("none of {matched} events came")));
        }
        Ok(backlog)
    };
    let result = match tokio::time::timeout(FETCH_TIMEOUT, read).await {
        Ok(result) => result,
        Err(_) => Err(BulkError::Fetch("timed out".into())),
    };
    // Nothing waits for the deletion: the consumer has served its purpose, and if this
    // fails its inactivity threshold removes it.
    let (js, stream) = (js.clone(), stream.to_owned());
    tokio::spawn(async move {
        let _ = js.delete_consumer_from_stream(&name, &stream).await;
    });
    result
}
