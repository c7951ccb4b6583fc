//! Reading a KV key as its stream's leader has it (issue 15).
//!
//! Our buckets allow direct gets, as every NATS client declares them: any replica answers a
//! read, which keeps reads off the leader. A follower answers with what it has applied so
//! far, so on a replicated bucket a read just after a write can miss it. Measured on a
//! 3-node cluster under load: a session opened on one gateway, whose next request was
//! answered 404 because the replica that answered had not applied the `create` yet.
//!
//! So a record found missing is asked of the leader before we believe it, and a record about
//! to be rewritten on condition of its revision is read from the leader first (a stale
//! revision would make the write fail). Found records are served from any replica: the
//! session cache and the tasks' compare-and-set writes see a newer one when it matters.

use std::str::FromStr;

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bus_schema::failover::{self, Repeat};

/// Key `key` of `kv` as the leader holds it: `None` if it was never written (or purged).
pub async fn entry(kv: &kv::Store, key: &str) -> Result<Option<kv::Entry>, async_nats::Error> {
    let subject = format!("{}{}", kv.prefix, key);
    let read = failover::retry(failover::deadline(), Repeat::Always, || {
        kv.stream.get_last_raw_message_by_subject(&subject)
    })
    .await;
    let message = match read {
        Ok(message) => message,
        Err(failover::GaveUp::Failed(e)) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
            return Ok(None)
        }
        Err(e) => return Err(e.to_string().into()),
    };
    // As the client library reads a direct get: an operation header, else a put.
    let operation = message
        .headers
        .get("KV-Operation")
        .and_then(|op| kv::Operation::from_str(op.as_str()).ok())
        .unwrap_or(kv::Operation::Put);
    Ok(Some(kv::Entry {
        bucket: kv.name.clone(),
        key: key.to_owned(),
        value: message.payload,
        revision: message.sequence,
        delta: 0,
        created: message.time,
        operation,
        seen_current: false,
    }))
}

/// Key `key` of `kv` from any replica, asking the leader when the replica has nothing.
pub async fn entry_or_leader(
    kv: &kv::Store,
    key: &str,
) -> Result<Option<kv::Entry>, async_nats::Error> {
    let found = failover::retry(failover::deadline(), Repeat::Always, || kv.entry(key))
        .await
        .map_err(|e| -> async_nats::Error { e.to_string().into() })?;
    match found {
        Some(entry) => Ok(Some(entry)),
        None => entry(kv, key).await,
    }
}
