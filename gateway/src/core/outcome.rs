//! What the core answers a request with. The edges render it: JSON or SSE, the revision's
//! result decoration, its task view, its HTTP status.

use serde_json::Value;

use super::answer_id::AnswerIds;
use super::listen::ListenFilter;
use super::mrtr::Mrtr;
use crate::quota::{CallSlot, Slot};
use crate::route::{CallUpdate, PendingCall};
use crate::session::SessionId;
use crate::stream::{EventId, RequestStream};
use crate::tasks::TaskRecord;
use bus_schema::mcp::LogLevel;

/// The answer to one request.
pub enum Outcome {
    /// A complete result.
    Done { result: Value, cache: Cache },
    /// `initialize` created this session.
    Initialized { session: SessionId, result: Value },
    /// A queued call: its updates become the response.
    Call(Box<CallPlan>),
    /// A task, as the request left it.
    Task(Box<TaskOutcome>),
    /// A `subscriptions/listen` stream with this filter, holding the client's listen slot.
    Listen(ListenFilter, Slot),
}

impl Outcome {
    pub fn task(task: TaskOutcome) -> Self {
        Self::Task(Box::new(task))
    }

    /// A complete result no lane caches.
    pub fn done(result: Value) -> Self {
        Self::Done {
            result,
            cache: Cache::None,
        }
    }

    /// The outcome of a call that took `slot`: a call in progress holds it until it ends;
    /// anything else (an answer, a task) gives it back now.
    pub fn holding(mut self, slot: CallSlot) -> Self {
        if let Self::Call(plan) = &mut self {
            plan.slot = Some(slot);
        }
        self
    }
}

/// Who may cache a result, where the revision has caching hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    None,
    /// The same for every client (lists, `server/discover`).
    Public,
    /// What a worker returns may depend on the caller (reads).
    Private,
}

/// How a call's updates reach the client.
pub struct CallPlan {
    pub id: Value,
    pub feed: CallFeed,
    /// `_meta.progressToken` of the request; progress is only sent when there is one.
    pub progress_token: Option<Value>,
    /// Lowest log severity forwarded; `None` forwards no log messages.
    pub min_log: Option<LogLevel>,
    /// Set where the request may be answered with an `InputRequiredResult`.
    pub mrtr: Option<Mrtr>,
    /// The 2025-11-25 task these messages belong to (requests to the client and the result
    /// carry `related-task` meta).
    pub related_task: Option<String>,
    pub cache: Cache,
    pub delivery: Delivery,
    /// Ids for the call's requests to the client, answerable only by the caller.
    pub answers: AnswerIds,
    /// The caller's quota slots for this call (ADR 0012), held until the call ends.
    slot: Option<CallSlot>,
    /// Whether the feed gave its final update.
    finished: bool,
}

impl CallPlan {
    /// A plan for `caller`'s request `id`, answered from `feed`: no progress, no log
    /// messages, no MRTR, no task, no caching hints until the builders below say otherwise.
    pub fn new(
        sealer: &std::sync::Arc<crate::request_state::StateSealer>,
        caller: &super::caller::Caller,
        id: Value,
        feed: CallFeed,
        delivery: Delivery,
    ) -> Self {
        Self {
            id,
            feed,
            progress_token: None,
            min_log: None,
            mrtr: None,
            related_task: None,
            cache: Cache::None,
            delivery,
            answers: AnswerIds::for_caller(sealer, caller),
            slot: None,
            finished: false,
        }
    }

    /// Forwards progress for `token` and log messages from `min_log` up.
    pub fn with_updates(mut self, token: Option<Value>, min_log: Option<LogLevel>) -> Self {
        self.progress_token = token;
        self.min_log = min_log;
        self
    }

    pub fn with_mrtr(mut self, mrtr: Option<Mrtr>) -> Self {
        self.mrtr = mrtr;
        self
    }

    pub fn with_cache(mut self, cache: Cache) -> Self {
        self.cache = cache;
        self
    }

    pub fn related_to(mut self, task: String) -> Self {
        self.related_task = Some(task);
        self
    }

    /// The call's next update.
    pub async fn next(&mut self) -> Option<(Option<EventId>, CallUpdate)> {
        let next = self.feed.next().await;
        if matches!(next, Some((_, CallUpdate::Done(_))) | None) {
            self.finished = true;
        }
        next
    }
}

impl Drop for CallPlan {
    /// A client that leaves a session-lane call before its end does not cancel it (in the
    /// 2025 revisions disconnection is not cancellation, and the client may resume): the
    /// call still occupies a worker, so it keeps its quota slots until it ends. A follower
    /// reads the stored stream to that end (or the call's deadline) and then lets go.
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        if self.finished {
            return;
        }
        let CallFeed::Stored(_) = &self.feed else {
            return;
        };
        let mut feed = std::mem::replace(&mut self.feed, CallFeed::Settled(None));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _slot = slot;
            while let Some((_, update)) = feed.next().await {
                if matches!(update, CallUpdate::Done(_)) {
                    break;
                }
            }
        });
    }
}

/// Whether a call's answer may, must or must not be a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// One JSON body (routed reads: short, and their clients expect JSON; a 2026-07-28
    /// task-capable call that finished without becoming a task).
    Json,
    /// SSE unless the gateway runs with `--json-tool-calls` (tool calls).
    Either,
    /// Always SSE (`tasks/result`: it carries the worker's questions).
    Stream,
}

/// Where a call's updates come from.
pub enum CallFeed {
    /// Core-NATS replies to this gateway (stateless tool calls, and routed reads on both
    /// lanes): not resumable.
    Core(Box<PendingCall>),
    /// The session events stream (session lane, tasks): every update has an event id, and
    /// the stream can be resumed on any node.
    Stored(Box<RequestStream>),
    /// An update the core already took from the call (a task-capable call that finished
    /// without becoming a task).
    Settled(Option<CallUpdate>),
}

impl CallFeed {
    pub async fn next(&mut self) -> Option<(Option<EventId>, CallUpdate)> {
        match self {
            CallFeed::Core(call) => call.next().await.map(|u| (None, u)),
            CallFeed::Stored(stream) => stream.next().await.map(|(id, u)| (Some(id), u)),
            CallFeed::Settled(update) => update.take().map(|u| (None, u)),
        }
    }

    /// Where a resumable feed stands: its priming event id.
    pub fn position(&self) -> Option<EventId> {
        match self {
            CallFeed::Stored(stream) => Some(stream.position()),
            CallFeed::Core(_) | CallFeed::Settled(_) => None,
        }
    }
}

/// A task as a request left it; each revision renders it its own way.
pub enum TaskOutcome {
    /// The call became this task (`CreateTaskResult`).
    Created(TaskRecord),
    /// `tasks/get`: the record, with the status to show (a pending question shows as
    /// `input_required` on 2025-11-25 without being stored).
    Status(TaskRecord, crate::tasks::TaskStatus),
    /// `tasks/cancel` cancelled it.
    Cancelled(TaskRecord),
    /// `tasks/update` took the answers, or `tasks/cancel` found nothing to cancel: an empty
    /// acknowledgement.
    Acknowledged,
}
