//! Server-wide messages from workers (ADR 0023). A worker asks on its pool's announce
//! subject; one gateway of the queue group checks the request, stores it once in the
//! broadcast stream as a `notifications/message`, and answers. Every gateway then delivers
//! it to its session-lane standalone streams, each filtered by its session's log level.
//!
//! What a worker can make the cluster hold: one broadcast event per accepted request, at
//! most [`ANNOUNCEMENT_MAX_BYTES`], at most [`PER_MINUTE`] a minute per pool on each
//! gateway; the broadcast stream's own limits (ADR 0007) bound the total. It cannot speak as
//! another pool or as the operator: the logger shown is always its pool's name first.

use std::num::NonZeroU32;

use bus_schema::mcp::code;
use bus_schema::messages::{
    decode, encode, AnnounceReply, Announcement, BroadcastKind, WireError, ANNOUNCEMENT_MAX_BYTES,
};
use bus_schema::names::PoolName;
use bus_schema::{subjects, PROTOCOL_VERSION};
use futures::StreamExt;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::BroadcastHub;

/// The longest id and logger name accepted, in characters.
const MAX_NAME_CHARS: usize = 64;

/// Announcements accepted per pool per minute on one gateway, and the burst.
pub const PER_MINUTE: u32 = 30;
const BURST: u32 = 10;

/// Pools whose rate state is kept before the idle ones are dropped.
const MAX_TRACKED_POOLS: usize = 10_000;

/// Takes workers' announcement requests until `stop`.
pub async fn serve_announcements(
    nats: async_nats::Client,
    hub: BroadcastHub,
    stop: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    let mut requests = nats
        .queue_subscribe(subjects::ANNOUNCE_WILDCARD, subjects::ANNOUNCE_QUEUE.into())
        .await?;
    let quota = Quota::per_minute(NonZeroU32::new(PER_MINUTE).expect("non-zero"))
        .allow_burst(NonZeroU32::new(BURST).expect("non-zero"));
    let limiter: DefaultKeyedRateLimiter<String> = RateLimiter::dashmap(quota);
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = stop.cancelled() => return,
                m = requests.next() => match m { Some(m) => m, None => return },
            };
            let Some(pool) =
                subjects::pool_from_announce(&msg.subject).and_then(|p| PoolName::new(p).ok())
            else {
                continue;
            };
            // Answers go to the asking pool's inbox only: a request naming another pool's
            // inbox gets none (a worker may not make us write into another pool's inbox).
            let reply_to = msg
                .reply
                .as_ref()
                .filter(|r| r.starts_with(&format!("{}.", subjects::worker_inbox_prefix(&pool))));
            if limiter.len() > MAX_TRACKED_POOLS {
                limiter.retain_recent();
            }
            let outcome = match limiter.check_key(&pool.as_str().to_owned()) {
                Err(_) => Err(refusal(
                    code::QUOTA_EXCEEDED,
                    format!(
                        "pool {pool} sent more than {PER_MINUTE} announcements a minute; retry later"
                    ),
                    "rate_limited",
                )),
                Ok(()) => store(&hub, &pool, &msg.payload).await,
            };
            if let Err(e) = &outcome {
                tracing::warn!(pool = %pool, error = %e.message, "announcement refused");
            }
            if let Some(reply_to) = reply_to {
                let reply = AnnounceReply {
                    protocol: PROTOCOL_VERSION,
                    error: outcome.err(),
                };
                let _ = nats.publish(reply_to.clone(), encode(&reply)).await;
            }
        }
    });
    Ok(())
}

/// Checks one request and stores it in the broadcast stream.
async fn store(hub: &BroadcastHub, pool: &PoolName, payload: &[u8]) -> Result<(), WireError> {
    let a = check(pool, payload)?;
    let kind = BroadcastKind::Message {
        level: a.level,
        logger: match &a.logger {
            Some(l) => format!("{pool}/{l}"),
            None => pool.to_string(),
        },
        data: a.data,
    };
    hub.publish(kind, &format!("announce:{pool}:{}", a.id))
        .await
        .map_err(|e| {
            refusal(
                code::INTERNAL_ERROR,
                format!("the announcement could not be stored: {e}"),
                "bus_unavailable",
            )
        })
}

/// The request, if it is one a gateway stores.
fn check(pool: &PoolName, payload: &[u8]) -> Result<Announcement, WireError> {
    if payload.len() > ANNOUNCEMENT_MAX_BYTES {
        return Err(refusal(
            code::INVALID_PARAMS,
            format!(
                "the announcement from pool {pool} is {} bytes; the limit is {ANNOUNCEMENT_MAX_BYTES}",
                payload.len()
            ),
            "too_large",
        ));
    }
    let a: Announcement = decode(payload).map_err(|e| {
        refusal(
            code::INVALID_PARAMS,
            format!("unreadable announcement: {e}"),
            "malformed",
        )
    })?;
    let fine = |s: &str| {
        !s.is_empty() && s.chars().count() <= MAX_NAME_CHARS && !s.chars().any(char::is_control)
    };
    if !fine(&a.id) || a.logger.as_deref().is_some_and(|l| !fine(l)) {
        return Err(refusal(
            code::INVALID_PARAMS,
            format!(
                "an announcement's id and logger are 1 to {MAX_NAME_CHARS} characters, without control characters"
            ),
            "malformed",
        ));
    }
    Ok(a)
}

fn refusal(code: i64, message: String, reason: &str) -> WireError {
    WireError {
        code,
        message,
        data: Some(json!({"reason": reason})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> PoolName {
        PoolName::new("p").unwrap()
    }

    fn reason(e: WireError) -> String {
        e.data.unwrap()["reason"].as_str().unwrap().to_owned()
    }

    #[test]
    fn a_well_formed_announcement_passes() {
        let a = check(
            &pool(),
            br#"{"id":"a1","level":"warning","logger":"deploy","data":"restarting"}"#,
        )
        .unwrap();
        assert_eq!(a.level.as_str(), "warning");
    }

    #[test]
    fn bad_announcements_are_refused_with_a_reason() {
        let too_large = format!(
            r#"{{"id":"a","level":"info","data":"{}"}}"#,
            "x".repeat(ANNOUNCEMENT_MAX_BYTES)
        );
        assert_eq!(
            reason(check(&pool(), too_large.as_bytes()).unwrap_err()),
            "too_large"
        );
        for bad in [
            &b"not json"[..],
            br#"{"id":"a","level":"loud","data":1}"#,
            br#"{"id":"","level":"info","data":1}"#,
            br#"{"id":"a","level":"info","logger":"a\nb","data":1}"#,
        ] {
            assert_eq!(reason(check(&pool(), bad).unwrap_err()), "malformed");
        }
        let long = format!(r#"{{"id":"{}","level":"info","data":1}}"#, "i".repeat(65));
        assert_eq!(
            reason(check(&pool(), long.as_bytes()).unwrap_err()),
            "malformed"
        );
    }
}
