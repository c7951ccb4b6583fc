//! The kit's side of the bus: it connects as an operator, declares the topology a gateway
//! would (the calls stream, the registry buckets, the session events stream for durable
//! replies), and plays the gateway: it queues calls, cancels them and answers the worker's
//! questions. Every subject and key comes from `bus_schema`.

use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::HeaderMap;
use bus_schema::connect::NatsOptions;
use bus_schema::messages::{encode, CallRequest, ClientAnswer};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::{headers, subjects, topology};

/// The pool consumer's bound on unacknowledged calls, as workers declare it (PROTOCOL.md
/// section 3), so that the consumer the kit creates is the one workers expect.
const POOL_MAX_ACK_PENDING: i64 = 10_000;

/// How long the kit waits for JetStream to store what it publishes.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub pool: PoolName,
    /// The made-up gateway whose reply subjects the stateless calls name; random per run,
    /// so that two runs never read each other's replies.
    pub gateway: InstanceId,
    /// The made-up session whose events subjects the durable (session lane) calls name.
    pub session: String,
    pub workers: kv::Store,
    pub catalogs: kv::Store,
    pub consumer: consumer::Consumer<consumer::pull::Config>,
    calls: stream::Stream,
}

impl Bus {
    /// Connects as the operator and declares what a gateway declares at start.
    pub async fn open(options: &NatsOptions, pool: PoolName, replicas: usize) -> Result<Self> {
        let options = options
            .clone()
            .with_inbox_prefix(subjects::ADMIN_INBOX_PREFIX);
        let client = bus_schema::connect::connect(&options, "mcpbusctl worker-check").await?;
        let js = jetstream::new(client.clone());
        let calls = topology::ensure_calls_stream(&js, replicas).await?;
        let workers = topology::ensure_kv(&js, topology::WORKERS_KV, replicas).await?;
        let catalogs = topology::ensure_kv(&js, topology::CATALOG_KV, replicas).await?;
        topology::ensure_stream(
            &js,
            topology::events_stream(replicas, topology::EVENTS_DEFAULT_MAX_AGE),
        )
        .await?;
        let consumer = topology::ensure_pool_consumer(&js, &pool, POOL_MAX_ACK_PENDING).await?;
        let run = random_hex();
        Ok(Self {
            gateway: InstanceId::new(format!("kit-{}", &run[..12])).expect("a valid id"),
            session: format!("kit-session-{run}"),
            client,
            js,
            pool,
            workers,
            catalogs,
            consumer,
            calls,
        })
    }

    /// Removes every call queued for the pool: the check needs the queue to itself.
    pub async fn purge_pool_queue(&self) -> Result<()> {
        self.calls
            .purge()
            .filter(subjects::call(&self.pool))
            .await
            .context("purging the pool's queued calls")?;
        Ok(())
    }

    /// Queues a call as a gateway does (headers `Nats-Msg-Id`, `Mcpbus-Protocol`,
    /// `Mcpbus-Method`), and returns its stream sequence, which its acks carry.
    pub async fn queue_call(&self, req: &CallRequest) -> Result<u64> {
        let mut h = HeaderMap::new();
        h.insert(headers::PROTOCOL, req.protocol.to_string().as_str());
        h.insert(headers::METHOD, req.method.as_str());
        self.queue_body(&req.call_id, h, encode(req).to_vec()).await
    }

    /// Queues any body (unreadable or malformed calls) under the pool's call subject.
    pub async fn queue_raw(&self, msg_id: &str, body: Vec<u8>) -> Result<u64> {
        self.queue_body(msg_id, HeaderMap::new(), body).await
    }

    async fn queue_body(&self, msg_id: &str, mut h: HeaderMap, body: Vec<u8>) -> Result<u64> {
        h.insert(headers::MSG_ID, msg_id);
        let ack = tokio::time::timeout(STORE_TIMEOUT, async {
            self.js
                .publish_with_headers(subjects::call(&self.pool), h, body.into())
                .await?
                .await
        })
        .await
        .context("the calls stream did not store a call in time")?
        .context("queueing a call")?;
        Ok(ack.sequence)
    }

    /// Publishes a cancellation, as a gateway does: an empty message on the call's subject.
    pub async fn cancel(&self, subject: String) -> Result<()> {
        self.client.publish(subject, Vec::new().into()).await?;
        self.client.flush().await?;
        Ok(())
    }

    /// Publishes the client's answer to the worker's request `seq` of `call_id`.
    pub async fn answer(&self, call_id: &str, seq: u32, answer: &ClientAnswer) -> Result<()> {
        let subject = subjects::client_answer(&self.pool, call_id, seq);
        self.client.publish(subject, encode(answer)).await?;
        self.client.flush().await?;
        Ok(())
    }
}

/// 32 random hex digits: call ids, the run's names.
pub fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
