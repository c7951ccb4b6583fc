//! What every check works with: the bus as a gateway sees it, the log of what the worker
//! sent, and what the worker registered. Also the standard ways of running one call.

use std::time::Duration;

use bus_schema::messages::{CatalogRecord, ToolEntry, WorkerRecord};
use bus_schema::names::InstanceId;

use super::bus::Bus;
use super::call::{CallSpec, Sent};
use super::observe::{Recorder, Trace};

/// How long a call that should answer at once may take to answer. Generous: a worker in an
/// interpreted language on a loaded CI machine is slow, and a hung one still fails in time.
pub const REPLY_WITHIN: Duration = Duration::from_secs(5);

/// How long after its final reply a call may take to be settled (ACK, TERM, NAK).
pub const SETTLE_WITHIN: Duration = Duration::from_secs(3);

/// How long the kit keeps listening for replies that must not come.
pub const QUIET_FOR: Duration = Duration::from_millis(400);

/// The worker's registration, once seen.
#[derive(Debug, Clone)]
pub struct Registered {
    pub record: WorkerRecord,
    pub catalog: Option<CatalogRecord>,
}

impl Registered {
    pub fn tool(&self, name: &str) -> Option<&ToolEntry> {
        self.catalog
            .as_ref()
            .and_then(|c| c.tools.iter().find(|t| t.name() == Some(name)))
    }
}

pub struct Kit {
    pub bus: Bus,
    pub recorder: Recorder,
    /// The name the kit gave the worker (`MCPBUS_INSTANCE`).
    pub instance: InstanceId,
    pub registered: Option<Registered>,
}

impl Kit {
    /// Queues a call.
    pub async fn send(&self, spec: &CallSpec) -> Result<Sent, String> {
        Sent::queue(&self.bus, spec).await
    }

    /// Queues a call and waits for its final reply and its settlement, each within bounds.
    pub async fn run(&self, spec: &CallSpec) -> Result<(Sent, Trace), String> {
        self.run_within(spec, REPLY_WITHIN).await
    }

    pub async fn run_within(
        &self,
        spec: &CallSpec,
        reply_within: Duration,
    ) -> Result<(Sent, Trace), String> {
        let sent = self.send(spec).await?;
        let trace = self.finish(&sent, reply_within).await;
        Ok((sent, trace))
    }

    /// Waits for the final reply of `sent`, then for its settlement.
    pub async fn finish(&self, sent: &Sent, reply_within: Duration) -> Trace {
        let (trace, answered) = self
            .recorder
            .wait(sent, reply_within, |t| t.final_reply().is_some())
            .await;
        if !answered {
            return trace;
        }
        let (trace, _) = self
            .recorder
            .wait(sent, SETTLE_WITHIN, |t| t.settled().is_some())
            .await;
        // Anything sent after the final reply (wrongly) has had the settle wait to arrive.
        trace
    }

    /// Waits until `sent` is settled, then listens a little longer for stray replies.
    pub async fn until_settled(&self, sent: &Sent, within: Duration) -> Trace {
        self.recorder
            .wait(sent, within, |t| t.settled().is_some())
            .await;
        tokio::time::sleep(QUIET_FOR).await;
        self.recorder.trace(sent)
    }

    /// Waits until the worker accepted `sent`.
    pub async fn until_accepted(&self, sent: &Sent, within: Duration) -> Result<(), String> {
        let (trace, ok) = self
            .recorder
            .wait(sent, within, |t| {
                t.replies.iter().any(|r| r.kind() == "accepted")
            })
            .await;
        match ok {
            true => Ok(()),
            false => Err(format!(
                "not accepted within {within:?} ({})",
                trace.kinds()
            )),
        }
    }

    /// `max_in_flight` the worker registered, if it registered.
    pub fn max_in_flight(&self) -> Option<u32> {
        self.registered.as_ref().map(|r| r.record.max_in_flight)
    }
}
