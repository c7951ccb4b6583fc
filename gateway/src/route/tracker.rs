//! What a call's replies mean for the client, whichever way they arrive (core NATS for the
//! stateless lane, the session events stream for the session lane).

use std::time::Duration;

use bus_schema::messages::{CallEvent, CallReply};
use bus_schema::names::{InstanceId, PoolName};
use serde_json::Value;
use tokio::time::Instant;

use super::{CallError, RouteError};
use crate::metrics::{CallMeter, Outcome};

/// Something to tell the client about a call in progress.
#[derive(Debug, Clone)]
pub enum CallUpdate {
    Progress {
        progress: f64,
        total: Option<f64>,
        message: Option<String>,
    },
    Log {
        level: String,
        logger: Option<String>,
        data: Value,
    },
    /// A request for the client (sampling, elicitation, roots), with the JSON-RPC id the
    /// client's answer will carry.
    ClientRequest {
        id: String,
        method: String,
        params: Value,
    },
    /// The worker lets the client's stream end here; a resumable stream closes with
    /// `retry:` and the client comes back for the rest.
    Detach,
    /// The worker made the call a task (only calls with a `task_id`).
    Escalate,
    /// The final outcome; nothing follows it.
    Done(Result<Value, CallError>),
}

/// Turns replies into updates and knows when the call has run out of time.
#[derive(Debug)]
pub struct CallTracker {
    /// The call this tracker follows. Its replies arrive on subjects only this call uses,
    /// but a worker writes the `call_id` inside them: one naming another call is dropped.
    call_id: String,
    tool: String,
    pool: PoolName,
    timeout: Duration,
    deadline: Instant,
    /// Set once a worker reports it started the call, for a precise timeout message.
    running_on: Option<InstanceId>,
    /// The highest progress the client was sent: MCP progress only increases, so anything
    /// at or below it is dropped. That is what makes a rerun after a worker crash, which
    /// starts its progress again from the bottom, look monotonic (ADR 0016).
    progress: Option<f64>,
    done: bool,
    /// The call's metrics, kept by the tracker of the request that queued it (a resumed
    /// stream's tracker has none: the call is counted once, where it started).
    meter: Option<CallMeter>,
}

impl CallTracker {
    pub fn new(
        call_id: String,
        tool: String,
        pool: PoolName,
        timeout: Duration,
        deadline: Instant,
    ) -> Self {
        Self {
            call_id,
            tool,
            pool,
            timeout,
            deadline,
            running_on: None,
            progress: None,
            done: false,
            meter: None,
        }
    }

    /// Counts the call in the tool-call metrics, from now.
    pub fn metered(mut self) -> Self {
        self.meter = Some(CallMeter::start(&self.pool, &self.tool));
        self
    }

    fn finish(&mut self, outcome: Outcome) {
        self.done = true;
        if let Some(m) = &mut self.meter {
            m.finish(outcome);
        }
    }

    /// The client went away before the answer and the call was called off.
    pub fn abandoned(&mut self) {
        self.finish(Outcome::Cancelled);
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The highest progress the client was sent, if any.
    pub fn progress(&self) -> Option<f64> {
        self.progress
    }

    /// The client was already sent progress up to `floor` (a resumed stream).
    pub fn raise_progress(&mut self, floor: f64) {
        self.progress = Some(self.progress.map_or(floor, |p| p.max(floor)));
    }

    /// The final update was already delivered (a resume after the stream's last event).
    pub fn mark_done(&mut self) {
        self.done = true;
    }

    /// A final reply without `accepted` before it (PROTOCOL §5.2: a worker may leave it out
    /// when the call answers at once): the call ran, and its queue time is counted up to
    /// now. A refusal (which never follows `accepted`) counts the same way: it was taken from
    /// the queue.
    fn ran(&mut self, instance: &InstanceId) {
        if self.running_on.is_none() {
            self.running_on = Some(instance.clone());
            if let Some(m) = &mut self.meter {
                m.accepted();
            }
        }
    }

    /// The update a reply means, if any (`accepted` only updates our state).
    pub fn observe(&mut self, reply: CallReply) -> Option<CallUpdate> {
        if self.done {
            return None;
        }
        if reply.call_id != self.call_id {
            // A buggy or hostile worker. Taken as this call's, a request in it would carry
            // an id that sends the client's answer to the call it names (another of the
            // pool's calls, perhaps another client's), and a result would end this call
            // with what was meant for that one.
            tracing::warn!(
                call_id = %self.call_id,
                named = %reply.call_id,
                instance = %reply.instance,
                "ignoring a reply that names another call"
            );
            return None;
        }
        match reply.event {
            CallEvent::Accepted => {
                self.running_on = Some(reply.instance);
                if let Some(m) = &mut self.meter {
                    m.accepted();
                }
                None
            }
            CallEvent::Progress {
                progress,
                total,
                message,
            } => {
                if !progress.is_finite() || self.progress.is_some_and(|p| progress <= p) {
                    return None;
                }
                self.progress = Some(progress);
                Some(CallUpdate::Progress {
                    progress,
                    total,
                    message,
                })
            }
            CallEvent::Request {
                seq,
                method,
                params,
            } => Some(CallUpdate::ClientRequest {
                id: bus_schema::client_request_id::format(&self.pool, &self.call_id, seq),
                method,
                params,
            }),
            CallEvent::Log {
                level,
                logger,
                data,
            } => Some(CallUpdate::Log {
                level,
                logger,
                data,
            }),
            CallEvent::Detach => Some(CallUpdate::Detach),
            CallEvent::Escalate => {
                // From here the task's record follows the call (`mcpbus_tasks_total`).
                if let Some(m) = &mut self.meter {
                    m.finish(Outcome::Task);
                }
                Some(CallUpdate::Escalate)
            }
            CallEvent::Result { result } => {
                self.ran(&reply.instance);
                self.finish(outcome_of(&result));
                Some(CallUpdate::Done(Ok(result)))
            }
            CallEvent::Error { error } => {
                self.ran(&reply.instance);
                self.finish(Outcome::Error);
                Some(CallUpdate::Done(Err(CallError::Worker(error))))
            }
        }
    }

    /// The final update of a call whose client did not read its replies in time.
    pub fn cut_off(&mut self) -> CallUpdate {
        self.finish(Outcome::Error);
        CallUpdate::Done(Err(RouteError::ClientTooSlow.into()))
    }

    /// The final update once the deadline has passed.
    pub fn timed_out(&mut self) -> CallUpdate {
        self.finish(Outcome::Timeout);
        let tool = self.tool.clone();
        let error = match &self.running_on {
            Some(instance) => RouteError::RunningTimeout {
                tool,
                instance: instance.clone(),
                after: self.timeout,
            },
            None => RouteError::QueuedTimeout {
                tool,
                pool: self.pool.clone(),
                after: self.timeout,
            },
        };
        CallUpdate::Done(Err(error.into()))
    }
}

/// How a result counts: a round asking for input, a tool's own failure, or a result.
fn outcome_of(result: &Value) -> Outcome {
    if bus_schema::mcp::result_type::is_input_required(result) {
        Outcome::InputRequired
    } else if result.get("isError").and_then(Value::as_bool) == Some(true) {
        Outcome::ToolError
    } else {
        Outcome::Result
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(value: f64) -> CallReply {
        CallReply {
            protocol: bus_schema::PROTOCOL_VERSION,
            call_id: "c".into(),
            instance: InstanceId::new("w").unwrap(),
            event: CallEvent::Progress {
                progress: value,
                total: None,
                message: None,
            },
        }
    }

    fn forwarded(tracker: &mut CallTracker, values: &[f64]) -> Vec<f64> {
        values
            .iter()
            .filter_map(|v| match tracker.observe(progress(*v)) {
                Some(CallUpdate::Progress { progress, .. }) => Some(progress),
                _ => None,
            })
            .collect()
    }

    fn tracker() -> CallTracker {
        let pool = PoolName::new("p").unwrap();
        CallTracker::new(
            "c".into(),
            "t".into(),
            pool,
            Duration::from_secs(1),
            Instant::now(),
        )
    }

    #[test]
    fn a_rerun_sends_progress_only_above_what_the_client_saw() {
        let mut t = tracker();
        // The first attempt reaches 3, the rerun starts again from 1.
        let sent = forwarded(&mut t, &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(sent, [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(t.progress(), Some(5.0));
        assert_eq!(forwarded(&mut t, &[f64::NAN, 5.0, 6.0]), [6.0]);
    }

    fn reply(event: CallEvent) -> CallReply {
        CallReply {
            protocol: bus_schema::PROTOCOL_VERSION,
            call_id: "c".into(),
            instance: InstanceId::new("w").unwrap(),
            event,
        }
    }

    /// Samples of tool `t` in `pool`, under either label: another test in this process
    /// (`label_sets_are_capped`) may have used up the label sets, folding `t` into `_other`.
    fn samples(pool: &str) -> (u64, u64) {
        let m = &crate::metrics::METRICS;
        let count = |h: &prometheus::HistogramVec| {
            [crate::metrics::OTHER_TOOL, "t"]
                .iter()
                .map(|tool| h.with_label_values(&[pool, tool]).get_sample_count())
                .sum::<u64>()
        };
        (count(&m.call_queue_seconds), count(&m.call_run_seconds))
    }

    /// PROTOCOL §5.2: a worker may leave `accepted` out when the result follows at once. The
    /// call still counts its queue time (up to the result) and its run time, once each.
    #[test]
    fn a_result_without_accepted_still_ends_the_queue_time() {
        let pool = PoolName::new("tracker-no-accepted").unwrap();
        let mut t = CallTracker::new(
            "c".into(),
            "t".into(),
            pool.clone(),
            Duration::from_secs(1),
            Instant::now(),
        )
        .metered();
        let result = CallEvent::Result {
            result: serde_json::json!({"content": []}),
        };
        assert!(matches!(
            t.observe(reply(result)),
            Some(CallUpdate::Done(Ok(_)))
        ));
        assert_eq!(samples(pool.as_str()), (1, 1));
        assert_eq!(t.running_on.as_ref().map(|i| i.as_str()), Some("w"));
    }

    /// With `accepted` first (older workers, and calls that ran past the grace), nothing changes.
    #[test]
    fn accepted_then_result_counts_the_queue_time_once() {
        let pool = PoolName::new("tracker-accepted").unwrap();
        let mut t = CallTracker::new(
            "c".into(),
            "t".into(),
            pool.clone(),
            Duration::from_secs(1),
            Instant::now(),
        )
        .metered();
        assert!(t.observe(reply(CallEvent::Accepted)).is_none());
        let error = CallEvent::Error {
            error: serde_json::from_value(serde_json::json!({"code": -32603, "message": "x"}))
                .unwrap(),
        };
        assert!(matches!(
            t.observe(reply(error)),
            Some(CallUpdate::Done(Err(_)))
        ));
        assert_eq!(samples(pool.as_str()), (1, 1));
    }

    /// A worker answering on this call's subject cannot speak for another call: not with a
    /// request (whose id would send the client's answer there), nor with a result.
    #[test]
    fn a_reply_naming_another_call_is_ignored() {
        let mut t = tracker();
        let ask = |call_id: &str| CallReply {
            call_id: call_id.into(),
            ..reply(CallEvent::Request {
                seq: 0,
                method: "roots/list".into(),
                params: serde_json::json!({}),
            })
        };
        assert!(t.observe(ask("another")).is_none());
        let result = CallEvent::Result {
            result: serde_json::json!({"content": []}),
        };
        let elsewhere = CallReply {
            call_id: "another".into(),
            ..reply(result.clone())
        };
        assert!(t.observe(elsewhere).is_none());
        assert!(!t.is_done());
        let pool = PoolName::new("p").unwrap();
        match t.observe(ask("c")) {
            Some(CallUpdate::ClientRequest { id, .. }) => assert_eq!(
                bus_schema::client_request_id::parse(&id),
                Some((pool, "c", 0))
            ),
            other => panic!("the call's own request: {other:?}"),
        }
        assert!(matches!(
            t.observe(reply(result)),
            Some(CallUpdate::Done(Ok(_)))
        ));
    }

    #[test]
    fn a_resumed_stream_starts_above_the_clients_last_progress() {
        let mut t = tracker();
        t.raise_progress(9.0);
        assert_eq!(forwarded(&mut t, &[1.0, 9.0, 10.0]), [10.0]);
    }
}
