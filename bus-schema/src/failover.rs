//! Riding out a JetStream leader change (issue 15, ADR 0031).
//!
//! On a clustered JetStream every stream, and every KV bucket (a stream too), has one leader
//! at a time. When the node holding it dies or freezes, the other replicas elect a new one
//! within a few seconds. In between, nobody listens on the stream's subjects, so a write is
//! answered at once with "503 no responders" (nothing was stored), or, if the leader died
//! with the write in flight, not at all (it may have been stored). A client that took either
//! as final would fail calls on a bus that was only moving. So the writes and reads that a
//! call depends on are retried here, within a bounded budget, and only where a repeat cannot
//! do a thing twice:
//!
//! - nothing stored ([`Failure::NotStored`]): always safe to repeat;
//! - no answer ([`Failure::Unanswered`]): repeated only by operations that are
//!   [`Repeat::Always`] safe: a publish carrying a `Nats-Msg-Id` (the stream drops the
//!   duplicate within its window), a last-writer-wins KV put of the same value, a read;
//! - anything else (a limit, a permission, a conflict): final at once.
//!
//! This is part of the wire contract because every process on the bus must behave the same
//! way for the cluster's failover window to be what `docs/ARCHITECTURE.md` says it is.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use tokio::time::Instant;

/// How long an operation keeps trying while its stream has no leader. JetStream elects a new
/// leader within a few seconds of losing one (issue 15 measured 2–6 s on nats-server 2.9);
/// a client whose own server died also needs a moment to reconnect to another seed.
pub const RETRY_FOR: Duration = Duration::from_secs(10);

/// The end of a fresh budget of [`RETRY_FOR`] from now.
pub fn deadline() -> Instant {
    Instant::now() + RETRY_FOR
}

/// How long one attempt waits for its answer: a leader that died with the request in flight
/// never answers, and the rest of the budget is better spent asking its successor.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// The first pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// What one failed attempt says about the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing was done: nobody listens on the subject (no leader at the moment), JetStream
    /// said it is unavailable, or the client is between servers.
    NotStored,
    /// No answer in time: the operation may or may not have been done.
    Unanswered,
    /// Anything else: a limit, a permission, a conflict, a malformed request.
    Final,
}

/// Which failures an operation may repeat after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Only when nothing was done: compare-and-set writes (a repeat of one that was stored
    /// would fail its own revision check and look like a conflict).
    IfNotStored,
    /// Also after no answer: reads, and writes that a second copy cannot change.
    Always,
}

impl Repeat {
    fn allows(self, failure: Failure) -> bool {
        match failure {
            Failure::NotStored => true,
            Failure::Unanswered => self == Repeat::Always,
            Failure::Final => false,
        }
    }
}

/// Why an operation gave up.
#[derive(Debug, thiserror::Error)]
pub enum GaveUp<E: std::error::Error + 'static> {
    /// Its last attempt failed with this error: a final one, or the budget was spent.
    #[error(transparent)]
    Failed(E),
    /// Its last attempt got no answer within [`ATTEMPT_TIMEOUT`] and the budget was spent.
    #[error("no answer from JetStream (its leader may be moving)")]
    Unanswered,
}

/// Runs `op` until it succeeds, fails for good, or the budget ends at `until`. Each attempt
/// waits at most [`ATTEMPT_TIMEOUT`], and never past `until`; between attempts the pause
/// grows from 50 ms to 500 ms.
pub async fn retry<T, E, Fut>(
    until: Instant,
    repeat: Repeat,
    mut op: impl FnMut() -> Fut,
) -> Result<T, GaveUp<E>>
where
    Fut: Future<Output = Result<T, E>>,
    E: std::error::Error + 'static,
{
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1u32;
    loop {
        // No attempt outlives the budget: `until` may be a call's own deadline.
        let wait = ATTEMPT_TIMEOUT.min(until.saturating_duration_since(Instant::now()));
        let (failure, gave_up) = match tokio::time::timeout(wait, op()).await {
            Ok(Ok(value)) => {
                if attempt > 1 {
                    tracing::info!(attempt, "JetStream answered again");
                }
                return Ok(value);
            }
            Ok(Err(e)) => (classify(&e), GaveUp::Failed(e)),
            Err(_) => (Failure::Unanswered, GaveUp::Unanswered),
        };
        if !repeat.allows(failure) || Instant::now() + pause >= until {
            return Err(gave_up);
        }
        tracing::debug!(attempt, ?failure, error = %gave_up, "JetStream operation failed; retrying");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
        attempt += 1;
    }
}

/// The client is between servers: nothing was sent. An operation checks
/// [`connected`] first rather than leave its message in the client's buffer for a whole
/// attempt.
#[derive(Debug, thiserror::Error)]
#[error("not connected to NATS")]
pub struct Disconnected;

/// `Err(Disconnected)` unless `client` is connected now.
pub fn connected(client: &async_nats::Client) -> Result<(), Disconnected> {
    match client.connection_state() {
        async_nats::connection::State::Connected => Ok(()),
        _ => Err(Disconnected),
    }
}

/// One attempt at storing a message: nothing is sent while `client` is between servers
/// (the message would only wait in its buffer), else the publish and its acknowledgement.
/// The unit [`retry`] repeats for a publish that carries a `Nats-Msg-Id`.
pub async fn store_once(
    client: &async_nats::Client,
    js: &jetstream::Context,
    subject: String,
    headers: async_nats::HeaderMap,
    payload: bytes::Bytes,
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    use jetstream::context::{PublishError, PublishErrorKind};
    connected(client).map_err(|e| PublishError::with_source(PublishErrorKind::Other, e))?;
    js.publish_with_headers(subject, headers, payload)
        .await?
        .await
}

/// What an async-nats error says about the store, read through its chain of sources.
pub fn classify(e: &(dyn std::error::Error + 'static)) -> Failure {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<Disconnected>() {
            return Failure::NotStored;
        }
        if let Some(e) = e.downcast_ref::<jetstream::context::PublishError>() {
            use jetstream::context::PublishErrorKind as K;
            match e.kind() {
                K::StreamNotFound => return Failure::NotStored,
                K::TimedOut | K::BrokenPipe => return Failure::Unanswered,
                _ => {}
            }
        }
        if let Some(e) = e.downcast_ref::<jetstream::context::RequestError>() {
            use jetstream::context::RequestErrorKind as K;
            match e.kind() {
                K::NoResponders => return Failure::NotStored,
                K::TimedOut => return Failure::Unanswered,
                _ => {}
            }
        }
        if let Some(e) = e.downcast_ref::<async_nats::RequestError>() {
            use async_nats::RequestErrorKind as K;
            match e.kind() {
                K::NoResponders => return Failure::NotStored,
                K::TimedOut => return Failure::Unanswered,
                _ => {}
            }
        }
        if let Some(e) = e.downcast_ref::<jetstream::Error>() {
            if unavailable(e) {
                return Failure::NotStored;
            }
        }
        next = e.source();
    }
    Failure::Final
}

/// JetStream's own "not now" answers: no cluster quorum, a stream or its leader offline.
/// By error code, not HTTP-like status: a stream at its limits also says 503 (10077), and a
/// full queue must be refused at once (ADR 0007), not retried.
///
/// Some 503s carry no error code at all (nats-server 2.9's stream.go and
/// jetstream_cluster.go): a leader whose consensus group refused the write, as it does while
/// its server shuts down ("raft: node is closed") or just after it lost the lead ("raft: not
/// leader"); a leader whose sequence disagrees with the group's just after a change ("expected
/// stream sequence does not match"); a store that is closing or failed to write. Each means
/// the message was not stored, and the write may succeed at the next leader (a rolling
/// restart in CI met one: `a_rolling_restart_under_load_fails_no_call`). The code-less
/// refusals that a repeat cannot change (a size, an account limit) say 400.
fn unavailable(e: &jetstream::Error) -> bool {
    use jetstream::ErrorCode as C;
    let code = e.error_code();
    code == C::CLUSTER_NOT_AVAILABLE
        || code == C::CLUSTER_NOT_LEADER
        || code == C::STREAM_OFFLINE
        || (code == C(0) && e.code() == 503)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetstream::context::{PublishError, PublishErrorKind};
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn publish_failures_say_whether_anything_was_stored() {
        let not_stored = PublishError::new(PublishErrorKind::StreamNotFound);
        assert_eq!(classify(&not_stored), Failure::NotStored);
        let unanswered = PublishError::new(PublishErrorKind::TimedOut);
        assert_eq!(classify(&unanswered), Failure::Unanswered);
        let full = PublishError::new(PublishErrorKind::Other);
        assert_eq!(classify(&full), Failure::Final);
    }

    #[test]
    fn a_wrapped_failure_is_read_through_its_sources() {
        use jetstream::kv::{PutError, PutErrorKind};
        let put = PutError::with_source(
            PutErrorKind::Ack,
            PublishError::new(PublishErrorKind::StreamNotFound),
        );
        assert_eq!(classify(&put), Failure::NotStored);
        let away = PublishError::with_source(PublishErrorKind::Other, Disconnected);
        assert_eq!(classify(&away), Failure::NotStored);
    }

    #[test]
    fn jetstream_saying_it_is_unavailable_is_not_stored() {
        let e: jetstream::Error = serde_json::from_str(
            r#"{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}"#,
        )
        .unwrap();
        assert_eq!(classify(&e), Failure::NotStored);
        let e: jetstream::Error = serde_json::from_str(
            r#"{"code":400,"err_code":10071,"description":"wrong last sequence: 4"}"#,
        )
        .unwrap();
        assert_eq!(classify(&e), Failure::Final);
        let full: jetstream::Error = serde_json::from_str(
            r#"{"code":503,"err_code":10077,"description":"maximum messages exceeded"}"#,
        )
        .unwrap();
        assert_eq!(
            classify(&full),
            Failure::Final,
            "a full queue is refused at once"
        );
        for refused in [
            "raft: node is closed",
            "raft: not leader",
            "expected stream sequence does not match",
            "store is closed",
        ] {
            let e: jetstream::Error =
                serde_json::from_str(&format!(r#"{{"code":503,"description":"{refused}"}}"#))
                    .unwrap();
            let e = PublishError::with_source(PublishErrorKind::Other, e);
            assert_eq!(classify(&e), Failure::NotStored, "{refused}");
        }
        let account: jetstream::Error = serde_json::from_str(
            r#"{"code":400,"description":"resource limits exceeded for account"}"#,
        )
        .unwrap();
        assert_eq!(classify(&account), Failure::Final);
    }

    async fn run(repeat: Repeat, fail_with: PublishErrorKind, failures: u32) -> (bool, u32) {
        let tries = AtomicU32::new(0);
        let until = Instant::now() + Duration::from_secs(5);
        let r = retry(until, repeat, || {
            let n = tries.fetch_add(1, Ordering::Relaxed);
            async move {
                if n < failures {
                    Err(PublishError::new(fail_with))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        (r.is_ok(), tries.load(Ordering::Relaxed))
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_stored_is_retried_by_every_operation() {
        assert_eq!(
            run(Repeat::IfNotStored, PublishErrorKind::StreamNotFound, 3).await,
            (true, 4)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_is_retried_only_where_a_repeat_is_harmless() {
        assert_eq!(
            run(Repeat::Always, PublishErrorKind::TimedOut, 2).await,
            (true, 3)
        );
        assert_eq!(
            run(Repeat::IfNotStored, PublishErrorKind::TimedOut, 2).await,
            (false, 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_failure_is_not_retried() {
        assert_eq!(
            run(Repeat::Always, PublishErrorKind::Other, 1).await,
            (false, 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_ends_the_retries() {
        let started = Instant::now();
        let until = started + Duration::from_secs(3);
        let r: Result<(), _> = retry(until, Repeat::Always, || async {
            Err(PublishError::new(PublishErrorKind::StreamNotFound))
        })
        .await;
        assert!(matches!(r, Err(GaveUp::Failed(_))));
        assert!(Instant::now() <= until, "never past the budget");
        assert!(Instant::now() - started >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_outlives_the_budget() {
        let until = Instant::now() + Duration::from_millis(700);
        let r: Result<(), GaveUp<PublishError>> =
            retry(until, Repeat::Always, std::future::pending).await;
        assert!(matches!(r, Err(GaveUp::Unanswered)));
        assert!(
            Instant::now() <= until,
            "given up by the deadline, not 2 s later"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_hangs_is_abandoned_and_asked_again() {
        let tries = AtomicU32::new(0);
        let until = Instant::now() + Duration::from_secs(10);
        let r = retry(until, Repeat::Always, || {
            let n = tries.fetch_add(1, Ordering::Relaxed);
            async move {
                if n == 0 {
                    std::future::pending::<()>().await;
                }
                Ok::<_, PublishError>(n)
            }
        })
        .await;
        assert_eq!(r.unwrap(), 1);
    }
}
