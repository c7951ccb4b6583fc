//! The operator's connection to a cluster and what every command reads through it: whole KV
//! buckets, stream and consumer info. Errors are said in one line that names what is missing
//! (`main.rs` prints them), since an operator reads them at a terminal.
//!
//! `mcpbusctl` runs as the `operator` role (ADR 0021, `bus_schema::permissions`): it reads
//! with ordered consumers and direct gets, and never touches the cluster bucket.

use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use async_nats::jetstream::{self, consumer, stream};
use bus_schema::connect::NatsArgs;
use bus_schema::topology::{kv_stream_name, KvSpec};
use futures::StreamExt;

/// How long reading one bucket may take: a command never hangs on a slow server.
const READ_WITHIN: Duration = Duration::from_secs(30);

/// A connection as the operator.
pub struct Cluster {
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
}

impl Cluster {
    /// Connects with the NATS flags, failing at once when no server answers.
    pub async fn connect(args: NatsArgs) -> Result<Self> {
        let options = args
            .into_options()?
            .with_inbox_prefix(bus_schema::subjects::ADMIN_INBOX_PREFIX);
        let nats = bus_schema::connect::connect(&options, "mcpbusctl").await?;
        let js = jetstream::new(nats.clone());
        Ok(Self { nats, js })
    }

    /// Stream `name`, or an error saying it does not exist (no gateway declared it).
    pub async fn stream(&self, name: &str) -> Result<stream::Stream> {
        self.js.get_stream(name).await.map_err(|e| {
            if missing(&e) {
                anyhow!(
                    "stream {name} does not exist on this NATS: no mcpbus gateway (of this \
                     version) has started on it"
                )
            } else {
                anyhow!("cannot read stream {name}: {e}")
            }
        })
    }

    /// Stream `name`'s info, or `None` when it does not exist.
    pub async fn stream_info(&self, name: &str) -> Result<Option<stream::Info>> {
        match self.js.get_stream(name).await {
            Ok(mut s) => Ok(Some(
                s.info()
                    .await
                    .with_context(|| format!("reading {name}"))?
                    .clone(),
            )),
            Err(e) if missing(&e) => Ok(None),
            Err(e) => bail!("cannot read stream {name}: {e}"),
        }
    }

    /// KV bucket `spec`, or an error naming it when it does not exist.
    pub async fn bucket(&self, spec: KvSpec) -> Result<jetstream::kv::Store> {
        let name = kv_stream_name(spec);
        self.js.get_stream(&name).await.map_err(|e| {
            if missing(&e) {
                anyhow!(
                    "bucket {} does not exist on this NATS: no mcpbus gateway (of this version) \
                     has started on it",
                    spec.bucket
                )
            } else {
                anyhow!("cannot read bucket {}: {e}", spec.bucket)
            }
        })?;
        self.js
            .get_key_value(spec.bucket)
            .await
            .with_context(|| format!("opening bucket {}", spec.bucket))
    }

    /// The current value of every key of bucket `spec` (deleted keys left out), in one pass
    /// of an ordered consumer (last message per key).
    pub async fn read_bucket(&self, spec: KvSpec) -> Result<Vec<KvValue>> {
        let store = self.bucket(spec).await?;
        let prefix = format!("$KV.{}.", spec.bucket);
        let read = async {
            let consumer = store
                .stream
                .create_consumer(consumer::push::OrderedConfig {
                    deliver_subject: self.nats.new_inbox(),
                    filter_subject: format!("{prefix}>"),
                    deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                    replay_policy: consumer::ReplayPolicy::Instant,
                    ..Default::default()
                })
                .await?;
            let mut values = Vec::new();
            if consumer.cached_info().num_pending == 0 {
                return Ok::<_, anyhow::Error>(values);
            }
            let mut messages = consumer.messages().await?;
            while let Some(message) = messages.next().await {
                let message = message?;
                let info = message.info().map_err(|e| anyhow!("{e}"))?;
                let pending = info.pending;
                let written = SystemTime::from(info.published);
                let deleted = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("KV-Operation"))
                    .is_some_and(|op| op.as_str() == "DEL" || op.as_str() == "PURGE");
                if !deleted && message.subject.as_str().starts_with(&prefix) {
                    values.push(KvValue {
                        value: message.payload.to_vec(),
                        written,
                    });
                }
                if pending == 0 {
                    break;
                }
            }
            Ok(values)
        };
        tokio::time::timeout(READ_WITHIN, read)
            .await
            .map_err(|_| anyhow!("reading bucket {} took over {READ_WITHIN:?}", spec.bucket))?
            .with_context(|| format!("reading bucket {}", spec.bucket))
    }
}

/// One current entry of a bucket.
pub struct KvValue {
    pub value: Vec<u8>,
    /// When it was last written, by the server's clock.
    pub written: SystemTime,
}

impl KvValue {
    /// How long ago it was last written (zero if the clocks disagree).
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.written)
            .unwrap_or_default()
    }
}

fn missing(e: &jetstream::context::GetStreamError) -> bool {
    use jetstream::context::GetStreamErrorKind;
    matches!(e.kind(), GetStreamErrorKind::JetStream(j)
        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
