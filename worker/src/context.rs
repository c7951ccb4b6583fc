//! What a tool handler knows about its call, and how it talks back while it runs.

use bus_schema::messages::{encode, CallEvent, CallReply};
use bus_schema::names::InstanceId;
use bus_schema::PROTOCOL_VERSION;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Handed to every tool handler.
#[derive(Clone)]
pub struct CallContext {
    /// `None` when the handler runs in-process without the bus (tests, benchmarks).
    pub(crate) nats: Option<async_nats::Client>,
    /// Subject of the gateway waiting for this call.
    pub(crate) reply_to: String,
    pub(crate) call_id: String,
    pub(crate) instance: InstanceId,
    /// Progress is only forwarded when the client asked for it with a `progressToken`;
    /// without one we do not even publish it.
    pub(crate) wants_progress: bool,
    pub(crate) cancel: CancellationToken,
}

impl CallContext {
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn instance(&self) -> &InstanceId {
        &self.instance
    }

    /// Fires when the worker is shutting down past its drain deadline. Long handlers should
    /// watch it and return early.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Sends `notifications/progress` to the client, if it asked for progress.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        if self.wants_progress {
            self.send(CallEvent::Progress {
                progress,
                total,
                message,
            })
            .await;
        }
    }

    /// Sends `notifications/message` (a log line) to the client.
    pub async fn log(&self, level: &str, data: Value) {
        self.send(CallEvent::Log {
            level: level.to_owned(),
            logger: None,
            data,
        })
        .await;
    }

    pub(crate) async fn send(&self, event: CallEvent) {
        let Some(nats) = &self.nats else { return };
        let reply = CallReply {
            protocol: PROTOCOL_VERSION,
            call_id: self.call_id.clone(),
            instance: self.instance.clone(),
            event,
        };
        // A lost reply cannot be retried meaningfully here: the gateway's timeout reports it.
        if let Err(e) = nats.publish(self.reply_to.clone(), encode(&reply)).await {
            tracing::warn!(call_id = %self.call_id, error = %e, "could not publish call reply");
        }
    }
}
