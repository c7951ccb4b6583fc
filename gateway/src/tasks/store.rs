//! Task records in KV `mcpbus-tasks`: create, read (moved on lazily from the last stored
//! reply), and the one compare-and-set loop every change goes through.

use async_nats::jetstream::kv;
use bus_schema::failover::{self, GaveUp, Repeat};
use bus_schema::subjects;

use super::error::TaskError;
use super::machine::advance;
use super::record::{TaskOwner, TaskRecord, TaskStatus};
use crate::route::unix_ms;
use crate::store_limits::{has_room, Store, StoreRefused};
use crate::stream::EventStore;

/// How often a compare-and-set is retried before the caller is told to try again.
const CAS_ATTEMPTS: usize = 5;

/// What a change made of a record, for [`TaskStore::modify`].
pub enum Change<T> {
    /// Write the record as changed, then answer `T`.
    Write(T),
    /// Leave the record as it is and answer `T`.
    Keep(T),
}

/// Task records, and the events of their calls.
#[derive(Clone)]
pub struct TaskStore {
    kv: kv::Store,
    events: EventStore,
}

impl TaskStore {
    pub fn new(kv: kv::Store, events: EventStore) -> Self {
        Self { kv, events }
    }

    pub fn events(&self) -> &EventStore {
        &self.events
    }

    /// Stores a new task; it is readable by every gateway once this returns.
    pub async fn create(&self, record: &TaskRecord) -> Result<(), TaskError> {
        let bytes = serde_json::to_vec(record).expect("records encode");
        let room = has_room(&self.kv, bytes.len())
            .await
            .map_err(|e| TaskError::Store(e.to_string()))?;
        if !room {
            return Err(StoreRefused::Full(Store::Tasks).into());
        }
        // Across a leader change of the bucket's stream, repeated only when nothing was
        // stored (ADR 0031).
        let bytes = bytes::Bytes::from(bytes);
        failover::retry(failover::deadline(), Repeat::IfNotStored, || {
            self.kv.create(&record.task_id, bytes.clone())
        })
        .await
        .map_err(|e| match e {
            GaveUp::Failed(e) => write_error(e),
            unanswered => TaskError::Store(unanswered.to_string()),
        })?;
        count_state(record.status);
        Ok(())
    }

    /// The record and its revision, or `None` when unknown.
    async fn get(&self, task_id: &str) -> Result<Option<(TaskRecord, u64)>, TaskError> {
        if !valid_task_id(task_id) {
            return Ok(None);
        }
        // A replica, or the leader if the replica has none yet (`leader_read.rs`).
        let entry = crate::leader_read::entry_or_leader(&self.kv, task_id)
            .await
            .map_err(|e| TaskError::Store(e.to_string()))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| Some((serde_json::from_slice(&e.value).ok()?, e.revision))))
    }

    /// Writes `record` if nobody changed it since `revision`: its new revision, or `None`
    /// if somebody did.
    /// Writes `record` over `revision`, whose status was `was`. `None`: another gateway wrote
    /// first.
    async fn replace(
        &self,
        record: &TaskRecord,
        revision: u64,
        was: TaskStatus,
    ) -> Result<Option<u64>, TaskError> {
        let bytes = bytes::Bytes::from(serde_json::to_vec(record).expect("records encode"));
        let written = failover::retry(failover::deadline(), Repeat::IfNotStored, || {
            self.kv.update(&record.task_id, bytes.clone(), revision)
        })
        .await;
        match written {
            Ok(new) => {
                // Counted by the gateway whose write moved the task: once per change.
                if record.status != was {
                    count_state(record.status);
                }
                Ok(Some(new))
            }
            Err(GaveUp::Failed(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Ok(None)
            }
            Err(GaveUp::Failed(e)) => Err(write_error(e)),
            Err(unanswered) => Err(TaskError::Store(unanswered.to_string())),
        }
    }

    /// The record as it stands now, with its revision, if `owner` may see it: a working
    /// task whose current call has finished (or passed its deadline) is moved on and written
    /// back. A task of another owner is as unknown as one that never was.
    pub async fn current(
        &self,
        task_id: &str,
        owner: TaskOwner<'_>,
    ) -> Result<(TaskRecord, u64), TaskError> {
        for _ in 0..CAS_ATTEMPTS {
            let unknown = || TaskError::Unknown(task_id.to_owned());
            let (mut record, revision) = self.get(task_id).await?.ok_or_else(unknown)?;
            let now_ms = unix_ms();
            if record.expired(now_ms) || !record.owned_by(owner) {
                return Err(unknown());
            }
            if record.status != TaskStatus::Working {
                return Ok((record, revision));
            }
            let last = self
                .events
                .last_event(
                    &record.pool,
                    &subjects::task_scope(task_id),
                    &record.call_id,
                )
                .await
                .map_err(|e| TaskError::Store(e.to_string()))?;
            if !advance(
                &mut record,
                last.as_ref().map(|(_, b)| b.as_slice()),
                now_ms,
            ) {
                return Ok((record, revision));
            }
            if let Some(revision) = self.replace(&record, revision, TaskStatus::Working).await? {
                return Ok((record, revision));
            }
            // Another gateway moved it first: read again.
        }
        Err(TaskError::Conflict)
    }

    /// Changes a task, up to date first, with compare-and-set: `change` may run more than
    /// once if another gateway changes the task meanwhile. Returns the record as written
    /// (or kept) and what `change` answered.
    pub async fn modify<T>(
        &self,
        task_id: &str,
        owner: TaskOwner<'_>,
        mut change: impl FnMut(&mut TaskRecord) -> Change<T>,
    ) -> Result<(TaskRecord, T), TaskError> {
        for _ in 0..CAS_ATTEMPTS {
            let (mut record, revision) = self.current(task_id, owner).await?;
            let was = record.status;
            match change(&mut record) {
                Change::Keep(answer) => return Ok((record, answer)),
                Change::Write(answer) => {
                    record.updated_ms = unix_ms();
                    if self.replace(&record, revision, was).await?.is_some() {
                        return Ok((record, answer));
                    }
                }
            }
        }
        Err(TaskError::Conflict)
    }

    /// Changes a task's record as it is, without moving it on first; for the gateway that
    /// runs its rounds. A lost race is ignored: it costs a cancel the chance to take a round
    /// back out of the queue, or a failure note.
    pub async fn touch(&self, task_id: &str, change: impl FnOnce(&mut TaskRecord) -> bool) {
        if let Ok(Some((mut record, revision))) = self.get(task_id).await {
            let was = record.status;
            if change(&mut record) {
                record.updated_ms = unix_ms();
                let _ = self.replace(&record, revision, was).await;
            }
        }
    }

    /// Stops a task's current round wherever it is: out of the queue if no worker took it
    /// yet, and a cancel signal to the worker running it.
    pub async fn stop_round(&self, record: &TaskRecord) {
        self.events
            .cancel_call(
                subjects::cancel(&record.pool, &record.call_id),
                record.call_seq,
            )
            .await;
    }
}

/// Task ids are ours (hex), so anything else is unknown without a lookup, and never reaches
/// a KV key or a subject.
fn count_state(status: TaskStatus) {
    crate::metrics::METRICS
        .tasks
        .with_label_values(&[status.as_str()])
        .inc();
}

fn valid_task_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A failed write: the bucket's size limits by their JetStream code, or the store.
fn write_error<E: std::error::Error + 'static>(e: E) -> TaskError {
    match StoreRefused::classify(Store::Tasks, &e) {
        Some(refused) => TaskError::Refused(refused),
        None => TaskError::Store(e.to_string()),
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ids_never_reach_the_store() {
        assert!(valid_task_id("0a1b2c"));
        for bad in ["", "a.b", "a*", "a>", &"x".repeat(65)] {
            assert!(!valid_task_id(bad), "{bad}");
        }
    }
}
