//! Task operations: starting a task's rounds, answering its questions, cancelling it, and
//! reading it back. Every record change goes through [`TaskStore::modify`]; the callers (the
//! core) never write a record themselves.

use std::time::Duration;

use bus_schema::mcp::{code, Method, ProtocolVersion};
use bus_schema::messages::Lane;
use bus_schema::principal::Principal;
use bus_schema::subjects;
use serde_json::{json, Map, Value};

use super::error::TaskError;
use super::machine::is_pending_question;
use super::record::{TaskOwner, TaskRecord, TaskStatus};
use super::store::{Change, TaskStore};
use crate::catalog::{Catalog, Lookup, ToolRoute};
use crate::route::{new_call_id, unix_ms, CallSpec, Dispatcher, RouteError};
use crate::stream::{RequestStream, StreamError, StreamOrigin};

/// Tasks, with what it takes to run their rounds.
#[derive(Clone)]
pub struct Tasks {
    store: TaskStore,
    dispatcher: Dispatcher,
    catalog: Catalog,
    default_timeout: Duration,
}

/// What a new task is, besides its first round.
pub struct NewTask<'a> {
    pub task_id: String,
    pub ttl_ms: u64,
    pub route: &'a ToolRoute,
    /// The `tools/call` params every round starts from.
    pub params: Value,
    pub client_capabilities: Value,
    /// The session a 2025-11-25 task is bound to.
    pub session: Option<String>,
    /// Who created it.
    pub principal: Option<Principal>,
}

/// What `tasks/cancel` did.
pub enum Cancelled {
    /// The task was cancelled now.
    Now(TaskRecord),
    /// The task had already ended; nothing changed.
    AlreadyEnded(TaskRecord),
}

impl Tasks {
    pub fn new(
        store: TaskStore,
        dispatcher: Dispatcher,
        catalog: Catalog,
        default_timeout: Duration,
    ) -> Self {
        Self {
            store,
            dispatcher,
            catalog,
            default_timeout,
        }
    }

    /// A fresh task id: 128 random bits in hex.
    pub fn new_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// Queues one round of task `task_id` (its first, or the next after input): the call
    /// with the task id, its replies stored under the task's scope.
    pub async fn start_round(
        &self,
        route: &ToolRoute,
        mut spec: CallSpec,
        task_id: &str,
        request_id: Value,
        call_id: Option<String>,
    ) -> Result<RequestStream, RouteError> {
        spec.task_id = Some(task_id.to_owned());
        let scope = subjects::task_scope(task_id);
        RequestStream::start(
            self.store.events(),
            &self.dispatcher,
            route,
            spec,
            self.default_timeout,
            StreamOrigin {
                session: &scope,
                request_id,
                progress_token: None,
                call_id,
            },
        )
        .await
    }

    /// Stores the record of a task whose first round is `round`; if that fails the round is
    /// called off, since nobody could ever ask for its result.
    pub async fn create(
        &self,
        task: NewTask<'_>,
        round: &RequestStream,
    ) -> Result<TaskRecord, TaskError> {
        let now = unix_ms();
        let record = TaskRecord {
            task_id: task.task_id,
            status: TaskStatus::Working,
            created_ms: now,
            updated_ms: now,
            ttl_ms: task.ttl_ms,
            tool: task.route.name().to_owned(),
            pool: task.route.pool.clone(),
            params: task.params,
            client_capabilities: task.client_capabilities,
            call_id: round.call_id().to_owned(),
            deadline_ms: round.deadline_ms(),
            call_seq: round.queued_at(),
            input_requests: Map::new(),
            answers: Map::new(),
            request_state: None,
            result: None,
            error: None,
            session: task.session,
            principal: task.principal,
            status_message: None,
        };
        if let Err(e) = self.store.create(&record).await {
            self.store.stop_round(&record).await;
            return Err(e);
        }
        Ok(record)
    }

    /// The task as it stands now, if `owner` may see it.
    pub async fn get(&self, task_id: &str, owner: TaskOwner<'_>) -> Result<TaskRecord, TaskError> {
        Ok(self.store.current(task_id, owner).await?.0)
    }

    /// Takes the client's answers to a task's open questions (2026-07-28 `tasks/update`);
    /// once every question is answered, the next round runs with the answers and the
    /// worker's state. Answers to questions not asked are ignored.
    pub async fn answer(
        &self,
        task_id: &str,
        owner: TaskOwner<'_>,
        responses: &Map<String, Value>,
        request_id: Value,
    ) -> Result<(), TaskError> {
        let (record, next_call) = self
            .store
            .modify(task_id, owner, |record| {
                if record.status != TaskStatus::InputRequired {
                    return Change::Keep(None);
                }
                let mut answered = false;
                for (key, answer) in responses {
                    if record.input_requests.remove(key).is_some() {
                        record.answers.insert(key.clone(), answer.clone());
                        answered = true;
                    }
                }
                if !answered {
                    return Change::Keep(None);
                }
                // Claimed in the record first, so two gateways never both start the round.
                let next_call = record.input_requests.is_empty().then(new_call_id);
                if let Some(call_id) = &next_call {
                    record.status = TaskStatus::Working;
                    record.call_id = call_id.clone();
                    record.call_seq = 0;
                }
                Change::Write(next_call)
            })
            .await?;
        if let Some(call_id) = next_call {
            self.next_round(record, call_id, request_id).await;
        }
        Ok(())
    }

    /// Runs a task's next round with the answers gathered and the worker's state.
    async fn next_round(&self, mut record: TaskRecord, call_id: String, request_id: Value) {
        let mut params = record.params.clone();
        params["inputResponses"] = Value::Object(std::mem::take(&mut record.answers));
        if let Some(state) = record.request_state.take() {
            params["requestState"] = state;
        }
        let snapshot = self.catalog.snapshot();
        let route = match snapshot.lookup(&record.tool) {
            Lookup::Live(route) => route.clone(),
            _ => {
                return self
                    .fail_round(&record, "no worker serves the tool any more")
                    .await
            }
        };
        // Later rounds exist only in the 2026-07-28 extension: they are its tool calls.
        let spec = CallSpec {
            method: Method::ToolsCall.as_str().to_owned(),
            params,
            lane: Lane::Stateless,
            protocol_version: ProtocolVersion::V2026_07_28,
            client_capabilities: record.client_capabilities.clone(),
            task_id: None,
            principal: record.principal.clone(),
        };
        let started = self
            .start_round(&route, spec, &record.task_id, request_id, Some(call_id))
            .await;
        match started {
            Ok(stream) => {
                // Where the round sits in the queue and when it times out.
                self.store
                    .touch(&record.task_id, |current| {
                        let same = current.call_id == stream.call_id();
                        if same {
                            current.call_seq = stream.queued_at();
                            current.deadline_ms = stream.deadline_ms();
                        }
                        same
                    })
                    .await
            }
            Err(e) => self.fail_round(&record, &e.to_string()).await,
        }
    }

    /// Marks a task failed because its next round could not start.
    async fn fail_round(&self, record: &TaskRecord, why: &str) {
        let error = json!({"code": code::INTERNAL_ERROR,
            "message": format!("the task's next round could not start: {why}")});
        self.store
            .touch(&record.task_id, |current| {
                current.status = TaskStatus::Failed;
                current.error = Some(error);
                true
            })
            .await
    }

    /// Cancels a task: the record first, then its round wherever it is.
    pub async fn cancel(
        &self,
        task_id: &str,
        owner: TaskOwner<'_>,
    ) -> Result<Cancelled, TaskError> {
        let (record, cancelled) = self
            .store
            .modify(task_id, owner, |record| {
                if record.status.is_terminal() {
                    return Change::Keep(false);
                }
                record.status = TaskStatus::Cancelled;
                Change::Write(true)
            })
            .await?;
        if !cancelled {
            return Ok(Cancelled::AlreadyEnded(record));
        }
        self.store.stop_round(&record).await;
        Ok(Cancelled::Now(record))
    }

    /// The status a 2025-11-25 client sees: a working task waiting for the client's answer
    /// shows as `input_required`.
    pub async fn shown_status(&self, record: &TaskRecord) -> TaskStatus {
        if record.status != TaskStatus::Working {
            return record.status;
        }
        match self.last_event(record).await {
            Ok(Some((_, last))) if is_pending_question(&last) => TaskStatus::InputRequired,
            _ => TaskStatus::Working,
        }
    }

    /// The current round's stream from its pending question on (or from where it stands),
    /// so that nothing answered is asked again (2025-11-25 `tasks/result`).
    pub async fn follow(&self, record: &TaskRecord) -> Result<RequestStream, StreamError> {
        let after = match self.last_event(record).await? {
            Some((seq, last)) if is_pending_question(&last) => seq - 1,
            Some((seq, _)) => seq,
            None => 0,
        };
        let scope = subjects::task_scope(&record.task_id);
        RequestStream::resume(self.store.events(), &scope, &record.call_id, after).await
    }

    async fn last_event(&self, record: &TaskRecord) -> Result<Option<(u64, Vec<u8>)>, StreamError> {
        let scope = subjects::task_scope(&record.task_id);
        self.store
            .events()
            .last_event(&record.pool, &scope, &record.call_id)
            .await
    }
}
