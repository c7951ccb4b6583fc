//! Cluster-wide notifications: published once per change into the broadcast stream, read by
//! one subscription per gateway, and fanned out in-process to every open stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bus_schema::failover::{self, Repeat};
use bus_schema::messages::{decode, encode, BroadcastEvent, BroadcastKind};
use bus_schema::{headers, subjects, topology, PROTOCOL_VERSION};
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::replay::{self, BulkError, DIRECT_GET_SPAN};
use super::{not_found, EventStore, StreamError};
use crate::catalog::{Catalog, CatalogSnapshot, ListKind};
use crate::metrics::METRICS;
use crate::policy::Policy;

/// Events buffered for streams that are momentarily slow; one that falls further behind
/// re-reads from the store instead of losing anything.
const CHANNEL_CAPACITY: usize = 1024;

/// One stored broadcast event, shared (`Arc`) by every stream that delivers it.
#[derive(Debug, Clone)]
pub struct BroadcastItem {
    /// Its sequence in the broadcast stream: the standalone stream's event id.
    pub seq: u64,
    pub kind: BroadcastKind,
    /// The event as every listen stream writes it, rendered by the first one that delivers
    /// it and reused by the rest, so fan-out to thousands of streams encodes it once
    /// (`http/listen.rs`, issue 18).
    pub rendered: OnceLock<Rendered>,
}

impl BroadcastItem {
    pub fn new(seq: u64, kind: BroadcastKind) -> Self {
        Self {
            seq,
            kind,
            rendered: OnceLock::new(),
        }
    }
}

/// Two events are the same event whatever was rendered from them.
impl PartialEq for BroadcastItem {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq && self.kind == other.kind
    }
}

/// An event's bytes on the wire around the part each stream writes itself (its
/// subscription id), and the delivery counter of its kind: what a stream needs to deliver
/// it without allocating or looking anything up.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub head: bytes::Bytes,
    pub tail: bytes::Bytes,
    pub deliveries: prometheus::IntCounter,
}

/// This gateway's view of the broadcast stream.
#[derive(Clone)]
pub struct BroadcastHub {
    store: EventStore,
    tx: broadcast::Sender<Arc<BroadcastItem>>,
    /// The highest sequence handed to the channel.
    head: Arc<AtomicU64>,
}

impl BroadcastHub {
    /// Subscribes once to the live copies and starts the fan-out task.
    pub async fn start(store: EventStore, stop: CancellationToken) -> Result<Self, StreamError> {
        let mut live = store
            .nats
            .subscribe(subjects::BROADCAST_LIVE_WILDCARD)
            .await
            .map_err(|e| StreamError::Store(e.to_string()))?;
        let mut info_handle = store.broadcast.clone();
        let head = info_handle
            .info()
            .await
            .map_err(|e| StreamError::Store(e.to_string()))?
            .state
            .last_sequence;
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        let hub = Self {
            store,
            tx,
            head: Arc::new(AtomicU64::new(head)),
        };
        let me = hub.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = live.next() => match m { Some(m) => m, None => return },
                };
                let seq: u64 = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(headers::SEQUENCE))
                    .and_then(|v| v.as_str().parse().ok())
                    .unwrap_or(0);
                me.deliver_through(seq, Some(&msg.payload)).await;
            }
        });
        Ok(hub)
    }

    /// Hands every event up to `seq` to the channel, reading any we never saw live (a
    /// reconnect gap) from the store first.
    async fn deliver_through(&self, seq: u64, payload: Option<&[u8]>) {
        let head = self.head.load(Ordering::Acquire);
        if seq <= head {
            return;
        }
        if seq > head + 1 {
            match self.replay(head, seq - 1).await {
                Ok(missed) => missed.into_iter().for_each(|item| self.send(item)),
                Err(e) => tracing::warn!(error = %e, "could not fill a broadcast gap"),
            }
        }
        if let Some(kind) = payload.and_then(parse) {
            self.send(BroadcastItem::new(seq, kind));
        }
        self.head.store(seq, Ordering::Release);
    }

    fn send(&self, item: BroadcastItem) {
        // No receivers is fine: no stream is open.
        let _ = self.tx.send(Arc::new(item));
    }

    /// A receiver and the position it starts after. Receiver first, so nothing published in
    /// between is lost (a duplicate is skipped by the caller's sequence check).
    pub fn subscribe(&self) -> (u64, broadcast::Receiver<Arc<BroadcastItem>>) {
        let rx = self.tx.subscribe();
        (self.head.load(Ordering::Acquire), rx)
    }

    /// The stored events after `after` up to `until`, in order. `Expired` when the store no
    /// longer holds the first of them. Many are read in bulk; a few, or all of them when a
    /// bulk read fails, one direct get each (ADR 0024).
    pub async fn replay(&self, after: u64, until: u64) -> Result<Vec<BroadcastItem>, StreamError> {
        if until.saturating_sub(after) > DIRECT_GET_SPAN {
            match self.replay_in_bulk(after, until).await {
                Ok(replayed) => return replayed,
                Err(e) => tracing::debug!(error = %e, "bulk read failed; reading one by one"),
            }
        }
        let mut out = Vec::new();
        let mut next = after + 1;
        while next <= until {
            match self
                .store
                .broadcast
                .direct_get_next_for_subject(subjects::BROADCAST_WILDCARD, Some(next))
                .await
            {
                Ok(m) => {
                    if m.sequence > next && out.is_empty() {
                        return Err(StreamError::Expired);
                    }
                    if m.sequence > until {
                        break;
                    }
                    if let Some(kind) = parse(&m.payload) {
                        out.push(BroadcastItem::new(m.sequence, kind));
                    }
                    next = m.sequence + 1;
                }
                Err(e) if not_found(&e.kind()) => {
                    if out.is_empty() {
                        return Err(StreamError::Expired);
                    }
                    break;
                }
                Err(e) => return Err(StreamError::Store(e.to_string())),
            }
        }
        Ok(out)
    }

    /// [`Self::replay`] through bulk reads. Every broadcast event matches the filter, so a
    /// first event past `after + 1` means the next one is gone: `Expired`, as one by one.
    async fn replay_in_bulk(
        &self,
        after: u64,
        until: u64,
    ) -> Result<Result<Vec<BroadcastItem>, StreamError>, BulkError> {
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            let read = replay::read_after(
                &self.store.js,
                topology::BROADCAST_STREAM,
                subjects::BROADCAST_WILDCARD,
                cursor,
            )
            .await?;
            for event in read.events {
                if cursor == after && event.seq > after + 1 {
                    return Ok(Err(StreamError::Expired));
                }
                if event.seq > until {
                    return Ok(Ok(out));
                }
                cursor = event.seq;
                if let Some(kind) = parse(&event.payload) {
                    out.push(BroadcastItem::new(event.seq, kind));
                }
            }
            if cursor == after {
                return Ok(Err(StreamError::Expired));
            }
            if !read.more || cursor >= until {
                return Ok(Ok(out));
            }
        }
    }

    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Publishes a cluster-wide event. `dedup_id` makes the same event from several gateways
    /// one stored event.
    pub async fn publish(&self, kind: BroadcastKind, dedup_id: &str) -> Result<(), StreamError> {
        publish(&self.store, kind, dedup_id).await
    }
}

fn parse(payload: &[u8]) -> Option<BroadcastKind> {
    match decode::<BroadcastEvent>(payload) {
        Ok(e) => Some(e.kind),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring unreadable broadcast event");
            None
        }
    }
}

async fn publish(
    store: &EventStore,
    kind: BroadcastKind,
    dedup_id: &str,
) -> Result<(), StreamError> {
    let token = kind.subject_token();
    let subject = subjects::broadcast(token);
    let body = encode(&BroadcastEvent {
        protocol: PROTOCOL_VERSION,
        kind,
    });
    let mut hdrs = async_nats::HeaderMap::new();
    hdrs.insert(headers::MSG_ID, dedup_id);
    // Across a leader change of the broadcast stream, under the same id (ADR 0031).
    let ack = failover::retry(failover::deadline(), Repeat::Always, || {
        failover::store_once(
            &store.nats,
            &store.js,
            subject.clone(),
            hdrs.clone(),
            body.clone(),
        )
    })
    .await
    .map_err(|e| StreamError::Store(e.to_string()))?;
    // Every gateway publishes each change; only the one whose copy was stored counts it.
    if !ack.duplicate {
        METRICS
            .broadcasts_published
            .with_label_values(&[token])
            .inc();
    }
    Ok(())
}

/// Publishes `tools`, `prompts` and `resources` `list_changed` whenever that list in this
/// gateway's catalogue changes. Every gateway runs this; the id `<kind>:<old digest>:<new
/// digest>:<generation>` makes the stream keep one copy per change.
pub async fn announce_catalog_changes(
    catalog: Catalog,
    hub: BroadcastHub,
    stop: CancellationToken,
) {
    while !catalog.is_synced() {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    let mut rx = catalog.subscribe();
    let mut previous = list_digests(&rx.borrow_and_update());
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
        let (digests, generation) = {
            let snapshot = rx.borrow_and_update();
            (list_digests(&snapshot), snapshot.generation().to_owned())
        };
        for (i, kind) in LISTS.iter().enumerate() {
            if digests[i] == previous[i] {
                continue;
            }
            let id = format!(
                "{}:{}:{}:{generation}",
                kind.subject_token(),
                previous[i],
                digests[i]
            );
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = publish_with_retries(&hub, kind.clone(), &id) => {}
            }
        }
        previous = digests;
    }
}

/// Publishes every `list_changed` when the authorization policy changes: any principal's
/// view of any list may have changed. Every gateway reloads the same file; the id
/// `policy:<kind>:<old digest>:<new digest>` makes the stream keep one copy per change.
pub async fn announce_policy_changes(
    mut policy: tokio::sync::watch::Receiver<Option<Arc<Policy>>>,
    hub: BroadcastHub,
    stop: CancellationToken,
) {
    let digest = |p: &Option<Arc<Policy>>| p.as_ref().map(|p| p.digest().to_owned());
    let mut previous = digest(&policy.borrow_and_update());
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = policy.changed() => if changed.is_err() { return },
        }
        let current = digest(&policy.borrow_and_update());
        for kind in LISTS {
            let id = format!(
                "policy:{}:{}:{}",
                kind.subject_token(),
                previous.as_deref().unwrap_or("-"),
                current.as_deref().unwrap_or("-")
            );
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = publish_with_retries(&hub, kind, &id) => {}
            }
        }
        previous = current;
    }
}

/// Publishes one change, each try within the failover budget (ADR 0031), for up to
/// [`ANNOUNCE_FOR`]: a bus without quorum for a while must not make a change go unannounced.
/// Later changes wait meanwhile and are announced together (the digests say what changed).
async fn publish_with_retries(hub: &BroadcastHub, kind: BroadcastKind, id: &str) {
    let until = tokio::time::Instant::now() + ANNOUNCE_FOR;
    loop {
        match hub.publish(kind.clone(), id).await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() < until => {
                tracing::warn!(error = %e, kind = kind.subject_token(), "publishing list_changed failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, kind = kind.subject_token(), "gave up announcing list_changed");
                return;
            }
        }
    }
}

/// How long one `list_changed` is tried before it is given up.
const ANNOUNCE_FOR: Duration = Duration::from_secs(120);

/// The lists whose changes are announced, in the order of [`list_digests`].
const LISTS: [BroadcastKind; 3] = [
    BroadcastKind::ToolsListChanged,
    BroadcastKind::PromptsListChanged,
    BroadcastKind::ResourcesListChanged,
];

fn list_digests(snapshot: &CatalogSnapshot) -> [String; 3] {
    [
        snapshot.digest(),
        snapshot.items_digest(&[ListKind::Prompts]),
        snapshot.items_digest(&[ListKind::Resources, ListKind::Templates]),
    ]
}

/// One open stream's position in the broadcast: yields each event after its cursor once,
/// re-reading from the store if it ever falls behind the in-process channel.
pub struct Follower {
    hub: BroadcastHub,
    rx: broadcast::Receiver<Arc<BroadcastItem>>,
    cursor: u64,
    backlog: std::collections::VecDeque<Arc<BroadcastItem>>,
}

impl Follower {
    /// Follows from the live head.
    pub fn live(hub: &BroadcastHub) -> Self {
        let (head, rx) = hub.subscribe();
        Self {
            hub: hub.clone(),
            rx,
            cursor: head,
            backlog: Default::default(),
        }
    }

    /// Follows from `after`, replaying what was stored since. `Expired` if the store no
    /// longer holds it; the follower is then positioned at the live head.
    pub async fn resume(hub: &BroadcastHub, after: u64) -> (Self, Result<(), StreamError>) {
        let mut f = Self::live(hub);
        let head = f.cursor;
        if after >= head {
            return (f, Ok(()));
        }
        match hub.replay(after, head).await {
            Ok(items) => {
                METRICS
                    .replayed_events
                    .with_label_values(&["standalone"])
                    .inc_by(items.len() as u64);
                f.backlog = items.into_iter().map(Arc::new).collect();
                f.cursor = after;
                (f, Ok(()))
            }
            Err(e) => (f, Err(e)),
        }
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The next event, shared with every other stream that delivers it.
    pub async fn next(&mut self) -> Arc<BroadcastItem> {
        loop {
            if let Some(item) = self.backlog.pop_front() {
                self.cursor = self.cursor.max(item.seq);
                return item;
            }
            match self.rx.recv().await {
                Ok(item) if item.seq > self.cursor => {
                    self.cursor = item.seq;
                    return item;
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Boxed: an idle stream's pending future is as large as its largest
                    // await, and this rare one (a read from the store) is large.
                    let replay = Box::pin(self.hub.replay(self.cursor, self.hub.head()));
                    match replay.await {
                        Ok(items) => self.backlog = items.into_iter().map(Arc::new).collect(),
                        Err(e) => tracing::warn!(error = %e, "a slow stream lost broadcast events"),
                    }
                }
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}
