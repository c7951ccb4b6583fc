//! Concurrency caps per key: at most `limit` of something (calls in flight, open listen
//! streams) per client or per session. A key's semaphore exists only while something holds
//! one of its permits, so the map is as large as what is in flight, no larger.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Semaphores by key, each with the same limit.
#[derive(Clone)]
pub struct KeyedSlots {
    limit: usize,
    slots: Arc<DashMap<String, Arc<Semaphore>>>,
}

/// One taken slot; given back when dropped.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    key: String,
    owner: KeyedSlots,
}

impl KeyedSlots {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            slots: Arc::default(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot for `key`, or `None` when it already holds `limit`.
    pub fn take(&self, key: &str) -> Option<Slot> {
        // Cloned under the shard lock, so a concurrent release cannot remove it unseen.
        let semaphore = self
            .slots
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.limit)))
            .clone();
        let permit = semaphore.try_acquire_owned().ok()?;
        Some(Slot {
            permit: Some(permit),
            key: key.to_owned(),
            owner: self.clone(),
        })
    }

    /// Keys with something in flight.
    pub fn keys(&self) -> usize {
        self.slots.len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let limit = self.owner.limit;
        // Nobody holds or is about to take a permit: forget the key.
        self.owner.slots.remove_if(&self.key, |_, s| {
            Arc::strong_count(s) == 1 && s.available_permits() == limit
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_gets_its_limit_and_forgets_itself_when_idle() {
        let slots = KeyedSlots::new(2);
        let a1 = slots.take("a").unwrap();
        let a2 = slots.take("a").unwrap();
        assert!(slots.take("a").is_none());
        let b = slots.take("b").unwrap();
        drop(a1);
        let a3 = slots.take("a").unwrap();
        assert_eq!(slots.keys(), 2);
        drop((a2, a3, b));
        assert_eq!(slots.keys(), 0);
    }
}
