//! The aggregated catalogue of everything the cluster's workers serve.
//!
//! Every gateway runs one watcher over the workers and catalogue KV buckets and publishes
//! an immutable [`CatalogSnapshot`] through a `watch` channel. Requests read the current
//! snapshot without locks; the same inputs give the same snapshot on every node, which is why
//! `tools/list` agrees across gateways.

mod claims;
mod freshness;
mod header_params;
mod liveness;
mod node_loss;
mod registry;
mod snapshot;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::kv;
use bus_schema::messages::{decode, CatalogRecord, WorkerRecord};
use bus_schema::names::InstanceId;
use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use bus_schema::subjects;
use freshness::Freshness;
use node_loss::NodeLoss;

pub use claims::{conflicts, resolve, Claims, Conflict, NameKind, PoolClaim};
pub use header_params::{header_params, HeaderParam};
pub use registry::Registry;
pub use snapshot::{BadCursor, CatalogSnapshot, ItemRoute, ListKind, Lookup, Page, ToolRoute};

/// How often silent workers are looked for. Adds to the worker TTL in the exit bound.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How long asking the server for a bucket's last sequence may take; past it the sweep
/// waits for the next tick, expiring nothing meanwhile.
const SEQUENCE_TIMEOUT: Duration = Duration::from_secs(1);

/// How recent this gateway's view must be for a liveness verdict to count: the workers watch
/// shown complete within it, and no reconnect of our own within it. A NATS server's death
/// takes its workers' subscriptions with it for a moment and stalls watches; a verdict then
/// says more about the failover than about the worker (issue 15).
const VERDICT_NEEDS_FRESH: Duration = Duration::from_millis(2500);

/// A handle on the live catalogue.
#[derive(Clone)]
pub struct Catalog {
    rx: watch::Receiver<Arc<CatalogSnapshot>>,
    /// Set once both buckets' existing entries have been read, so `/readyz` does not
    /// report ready with an empty catalogue right after start.
    synced: Arc<AtomicBool>,
}

impl Catalog {
    /// Starts the watcher; it runs until `stop` fires. `nats` and `gateway` (this gateway's
    /// id) probe the workers' liveness subscriptions (ADR 0029).
    pub fn start(
        workers: kv::Store,
        catalogs: kv::Store,
        max_worker_ttl: Duration,
        default_timeout: Duration,
        (nats, gateway): (async_nats::Client, InstanceId),
        stop: CancellationToken,
    ) -> Self {
        let (tx, rx) = watch::channel(Arc::new(CatalogSnapshot::default()));
        let synced = Arc::new(AtomicBool::new(false));
        // As if connected long ago: only a reconnect from now on holds verdicts back.
        let connects = (
            nats.statistics().connects.load(Ordering::Relaxed),
            Instant::now()
                .checked_sub(VERDICT_NEEDS_FRESH)
                .unwrap_or_else(Instant::now),
        );
        let watcher = Watcher {
            workers,
            catalogs,
            registry: Registry::new(max_worker_ttl),
            default_timeout,
            tx,
            synced: synced.clone(),
            workers_revision: 0,
            pool_workers: Default::default(),
            nats,
            gateway,
            liveness: Default::default(),
            workers_fresh: Freshness::new(Instant::now()),
            catalogs_fresh: Freshness::new(Instant::now()),
            node_loss: NodeLoss::default(),
            connects,
        };
        tokio::spawn(watcher.run(stop));
        Self { rx, synced }
    }

    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        self.rx.borrow().clone()
    }

    /// Changes as they happen (for `list_changed` fan-out).
    pub fn subscribe(&self) -> watch::Receiver<Arc<CatalogSnapshot>> {
        self.rx.clone()
    }

    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }
}

/// Logs the conflicts that appeared or ended since `before` (once per change, on every
/// gateway alike), and counts the current ones by kind on `/metrics`.
fn report_conflicts(before: &[Conflict], now: &[Conflict]) {
    for c in now.iter().filter(|c| !before.contains(c)) {
        tracing::warn!(kind = c.kind.as_str(), name = %c.name, kept_by = %c.kept_by,
            refused = %c.refused,
            "a pool registered a name another pool registered first; it is refused that name \
             (ADR 0015: give one of them a prefix)");
    }
    for c in before.iter().filter(|c| !now.contains(c)) {
        tracing::info!(kind = c.kind.as_str(), name = %c.name, kept_by = %c.kept_by,
            refused = %c.refused, "a name conflict ended");
    }
    for kind in NameKind::ALL {
        let count = now.iter().filter(|c| c.kind == kind).count();
        crate::metrics::METRICS
            .catalog_conflicts
            .with_label_values(&[kind.as_str()])
            .set(count as i64);
    }
}

struct Watcher {
    workers: kv::Store,
    catalogs: kv::Store,
    registry: Registry,
    default_timeout: Duration,
    tx: watch::Sender<Arc<CatalogSnapshot>>,
    synced: Arc<AtomicBool>,
    /// KV revision of the last worker entry applied: the same on every gateway once it
    /// has applied the same entries (see [`CatalogSnapshot::generation`]). Catalogue
    /// revisions are left out: a catalogue a gateway already holds (a list flipping back)
    /// may be re-put after the beat naming it, so gateways would disagree on them.
    workers_revision: u64,
    pool_workers: crate::metrics::PoolWorkers,
    nats: async_nats::Client,
    gateway: InstanceId,
    /// Which instances to probe, and when (ADR 0029).
    liveness: liveness::Liveness,
    /// How far each watch is shown complete: workers expire by it, not by the wall clock.
    workers_fresh: Freshness,
    catalogs_fresh: Freshness,
    /// Whether a NATS node holding the workers bucket is missing: workers get more time.
    node_loss: NodeLoss,
    /// This gateway's NATS connects so far, and when the count last changed.
    connects: (u64, Instant),
}

impl Watcher {
    async fn run(mut self, stop: CancellationToken) {
        loop {
            match self.watch(&stop).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "registry watch interrupted; re-watching");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// One watch session over both buckets. Returns `Ok` only when stopped.
    async fn watch(&mut self, stop: &CancellationToken) -> Result<(), async_nats::Error> {
        // Catalogues first, so a worker's tools are known by the time its heartbeat arrives.
        let started = Instant::now();
        // Each bounded by one failover attempt: while a bucket's stream has no leader the
        // request is never answered, and asking again soon finds its new leader sooner
        // than the client's own timeout would (ADR 0031).
        let attempt = bus_schema::failover::ATTEMPT_TIMEOUT;
        let mut catalogs =
            tokio::time::timeout(attempt, self.catalogs.watch_with_history(">")).await??;
        let mut workers =
            tokio::time::timeout(attempt, self.workers.watch_with_history(">")).await??;
        // A new watch proves nothing until it has replayed the buckets.
        self.workers_fresh = Freshness::new(self.workers_fresh.verified());
        self.catalogs_fresh = Freshness::new(self.catalogs_fresh.verified());
        let (mut catalogs_synced, mut workers_synced) = (false, false);
        // Empty buckets deliver nothing at all, so "synced" is also reached by a short quiet.
        let quiet = tokio::time::sleep(Duration::from_millis(500));
        tokio::pin!(quiet);
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        // Only the server's "no responders" comes back here; without the subscription,
        // probing is off and workers leave by their TTL.
        let mut answers = match self
            .nats
            .subscribe(subjects::alive_probe_replies(&self.gateway))
            .await
        {
            Ok(sub) => Some(sub),
            Err(e) => {
                tracing::warn!(error = %e, "cannot probe workers' liveness; dead workers leave after their TTL");
                None
            }
        };
        let mut probe = tokio::time::interval(liveness::PROBE_TICK);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let changed = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = &mut quiet, if !self.synced.load(Ordering::Relaxed) => {
                    catalogs_synced = true;
                    workers_synced = true;
                    false
                }
                e = catalogs.next() => {
                    let entry = e.ok_or("catalogue watch ended")??;
                    catalogs_synced |= entry.delta == 0;
                    self.catalogs_fresh.seen(entry.revision);
                    self.apply_catalog(entry)
                }
                e = workers.next() => {
                    let entry = e.ok_or("worker watch ended")??;
                    let historic = !workers_synced;
                    workers_synced |= entry.delta == 0;
                    self.workers_revision = entry.revision;
                    self.workers_fresh.seen(entry.revision);
                    // A record written before we started may already be past its TTL: drop it
                    // now rather than list a dead worker until the next sweep.
                    self.apply_worker(entry, historic) | (historic && self.expire_workers())
                }
                _ = sweep.tick() => {
                    self.check_freshness().await?;
                    let expired = self.expire_workers();
                    let registry = &self.registry;
                    self.liveness.retain(|key| registry.is_live(key));
                    expired
                }
                _ = probe.tick(), if answers.is_some() && !self.liveness.is_empty() && self.connected() => {
                    let probes = self.liveness.tick(&self.gateway, tokio::time::Instant::now());
                    liveness::send(&self.nats, probes).await;
                    false
                }
                answer = async { answers.as_mut()?.next().await }, if answers.is_some() => {
                    let Some(answer) = answer else {
                        tracing::warn!("liveness probe answers ended; dead workers leave after their TTL");
                        answers = None;
                        continue;
                    };
                    let gone = answer.status == Some(async_nats::StatusCode::NO_RESPONDERS);
                    let now = tokio::time::Instant::now();
                    match self.liveness.answered(answer.subject.as_str(), gone, now) {
                        liveness::Verdict::Gone { key } if self.view_is_fresh() => {
                            tracing::info!(worker = %key,
                                "worker's connection is gone (no responders on its alive subject); dropped it");
                            self.registry.remove_worker(&key, Instant::now())
                        }
                        _ => false,
                    }
                }
            };
            if catalogs_synced {
                self.catalogs_fresh.caught_up(started);
            }
            if workers_synced {
                self.workers_fresh.caught_up(started);
            }
            if catalogs_synced && workers_synced && !self.synced.swap(true, Ordering::Relaxed) {
                tracing::info!("catalogue synchronised with the registry");
            }
            if changed {
                let snap = self
                    .registry
                    .snapshot(self.default_timeout)
                    .with_generation(self.workers_revision.to_string());
                tracing::debug!(tools = snap.tools().len(), "catalogue changed");
                crate::metrics::METRICS
                    .catalog_tools
                    .set(snap.tools().len() as i64);
                self.pool_workers.update(&self.registry.workers_per_pool());
                report_conflicts(self.tx.borrow().conflicts(), snap.conflicts());
                self.tx.send_replace(Arc::new(snap));
            }
        }
    }

    fn connected(&self) -> bool {
        self.nats.connection_state() == async_nats::connection::State::Connected
    }

    /// Whether a liveness verdict may be acted on now (see [`VERDICT_NEEDS_FRESH`]).
    fn view_is_fresh(&mut self) -> bool {
        let now = Instant::now();
        let connects = self.nats.statistics().connects.load(Ordering::Relaxed);
        if connects != self.connects.0 {
            self.connects = (connects, now);
        }
        self.connected()
            && now.saturating_duration_since(self.connects.1) > VERDICT_NEEDS_FRESH
            && now.saturating_duration_since(self.workers_fresh.verified()) < VERDICT_NEEDS_FRESH
    }

    /// Drops the workers silent past their TTL by the verified clock, after forgiving any
    /// gap in it, and allowing more while a NATS node is missing. Returns whether any left.
    fn expire_workers(&mut self) -> bool {
        let verified = self.workers_fresh.verified();
        if let Some(gap) = self.workers_fresh.take_gap() {
            self.registry.pardon(gap, verified);
        }
        let grace = self.node_loss.grace(Instant::now());
        self.registry.expire(verified, grace)
    }

    /// Asks the server how far each bucket goes, so the watches can show they are complete;
    /// a watch that stays behind for [`freshness::STALL_AFTER`] is re-made (`Err`).
    async fn check_freshness(&mut self) -> Result<(), async_nats::Error> {
        let now = Instant::now();
        for (store, fresh, node_loss) in [
            (
                &self.workers,
                &mut self.workers_fresh,
                Some(&mut self.node_loss),
            ),
            (&self.catalogs, &mut self.catalogs_fresh, None),
        ] {
            if fresh.stalled(now) {
                return Err(format!("{} watch stalled behind its bucket", store.name).into());
            }
            if !fresh.wants_check() {
                continue;
            }
            // No answer (NATS unreachable, a leader election): nothing is shown, so the
            // clock workers expire by stays where it is until the server can say.
            if let Ok(Ok(info)) =
                tokio::time::timeout(SEQUENCE_TIMEOUT, store.stream.get_info()).await
            {
                // An empty bucket (every record aged out) has nothing left to deliver.
                let last = if info.state.messages == 0 {
                    0
                } else {
                    info.state.last_sequence
                };
                fresh.server_sequence(last, now);
                if let Some(node_loss) = node_loss {
                    node_loss.observe(node_loss::replica_missing(&info), now);
                }
            }
        }
        Ok(())
    }

    fn apply_catalog(&mut self, entry: kv::Entry) -> bool {
        if entry.operation != kv::Operation::Put {
            // Catalogues are content-addressed and kept in memory; an aged-out record does
            // not make a live pool's tools disappear.
            return false;
        }
        match decode::<CatalogRecord>(&entry.value) {
            Ok(record) => self.registry.put_catalog(&entry.key, record),
            Err(e) => {
                tracing::warn!(key = %entry.key, error = %e, "ignoring unreadable catalogue");
                false
            }
        }
    }

    /// `historic` entries were written before we started watching: their age comes from
    /// the server timestamp. Live ones are stamped on arrival, immune to clock skew.
    fn apply_worker(&mut self, entry: kv::Entry, historic: bool) -> bool {
        let now = Instant::now();
        if entry.operation != kv::Operation::Put {
            self.liveness.forget(&entry.key);
            return self.registry.remove_worker(&entry.key, now);
        }
        let seen = if historic {
            let written = SystemTime::UNIX_EPOCH
                + Duration::from_nanos(entry.created.unix_timestamp_nanos().max(0) as u64);
            let age = SystemTime::now()
                .duration_since(written)
                .unwrap_or_default();
            now.checked_sub(age).unwrap_or(now)
        } else {
            now
        };
        match decode::<WorkerRecord>(&entry.value) {
            Ok(record) => {
                self.liveness.track(&entry.key, &record, entry.revision);
                self.registry.put_worker(&entry.key, record, seen)
            }
            Err(e) => {
                tracing::warn!(key = %entry.key, error = %e, "ignoring unreadable worker record");
                false
            }
        }
    }
}
