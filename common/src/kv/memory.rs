//! The in-process TTL store: a map guarded by one mutex, and a background task that purges
//! expired keys (the design of tokio's mini-redis `db.rs`).
//!
//! Reads also treat an expired key as absent, so correctness never waits for the purge task.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{AllOrNothing, KvError, TtlStore, ttl_millis};

/// The in-process adapter of [`TtlStore`]. Dropping it stops its purge task.
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the purge task when the next expiry moves earlier or the store is dropped.
    purge_task: Notify,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Keys by expiry time, so the purge task finds the due ones without a scan.
    expirations: BTreeSet<(Instant, String)>,
    shutdown: bool,
}

struct Entry {
    value: String,
    expires_at: Instant,
}

impl MemoryStore {
    /// A new empty store; must be called inside a Tokio runtime (it spawns the purge task).
    pub fn new() -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            purge_task: Notify::new(),
        });
        tokio::spawn(purge_expired_keys(shared.clone()));
        Self { shared }
    }

    /// The number of live keys (for tests and metrics).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        let state = self.shared.lock();
        state
            .entries
            .values()
            .filter(|e| e.expires_at > now)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` on the state with expired keys invisible, waking the purge task if an expiry
    /// became the earliest one.
    fn with_state<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let now = Instant::now();
        let mut state = self.shared.lock();
        let earliest_before = state.next_expiration();
        let result = f(&mut state, now);
        let notify = match (earliest_before, state.next_expiration()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(before), Some(after)) => after < before,
        };
        drop(state);
        if notify {
            self.shared.purge_task.notify_one();
        }
        result
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.purge_task.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters more than losing the whole store, so keep serving.
        crate::sync::lock(&self.state)
    }
}

impl State {
    fn next_expiration(&self) -> Option<Instant> {
        self.expirations.first().map(|(when, _)| *when)
    }

    fn live(&self, key: &str, now: Instant) -> Option<&Entry> {
        self.entries.get(key).filter(|e| e.expires_at > now)
    }

    fn insert(&mut self, key: &str, value: String, expires_at: Instant) {
        if let Some(old) = self
            .entries
            .insert(key.to_string(), Entry { value, expires_at })
        {
            self.expirations.remove(&(old.expires_at, key.to_string()));
        }
        self.expirations.insert((expires_at, key.to_string()));
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.expirations
            .remove(&(entry.expires_at, key.to_string()));
        Some(entry)
    }

    fn set_expiry(&mut self, key: &str, expires_at: Instant) {
        if let Some(entry) = self.entries.get_mut(key) {
            self.expirations
                .remove(&(entry.expires_at, key.to_string()));
            entry.expires_at = expires_at;
            self.expirations.insert((expires_at, key.to_string()));
        }
    }

    /// Removes every expired key; answers the next expiry, if any.
    fn purge(&mut self, now: Instant) -> Option<Instant> {
        while let Some((when, key)) = self.expirations.first().cloned() {
            if when > now {
                return Some(when);
            }
            self.expirations.pop_first();
            self.entries.remove(&key);
        }
        None
    }
}

async fn purge_expired_keys(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut state = shared.lock();
            if state.shutdown {
                return;
            }
            state.purge(Instant::now())
        };
        match next {
            Some(when) => tokio::select! {
                () = tokio::time::sleep_until(when) => {}
                () = shared.purge_task.notified() => {}
            },
            None => shared.purge_task.notified().await,
        }
    }
}

fn deadline(now: Instant, ttl: Duration) -> Instant {
    now + Duration::from_millis(ttl_millis(ttl))
}

#[async_trait]
impl TtlStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        Ok(self.with_state(|s, now| s.live(key, now).map(|e| e.value.clone())))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        Ok(self.with_state(|s, now| {
            keys.iter()
                .map(|k| s.live(k, now).map(|e| e.value.clone()))
                .collect()
        }))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), KvError> {
        self.with_state(|s, now| s.insert(key, value.to_string(), deadline(now, ttl)));
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError> {
        Ok(self.with_state(|s, now| {
            if s.live(key, now).is_some() {
                return false;
            }
            s.insert(key, value.to_string(), deadline(now, ttl));
            true
        }))
    }

    async fn set_all_if_absent(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<AllOrNothing, KvError> {
        Ok(self.with_state(|s, now| {
            let conflicts: Vec<String> = keys
                .iter()
                .filter(|k| s.live(k, now).is_some())
                .cloned()
                .collect();
            if !conflicts.is_empty() {
                return AllOrNothing::Conflicts(conflicts);
            }
            let expires_at = deadline(now, ttl);
            for key in keys {
                s.insert(key, value.to_string(), expires_at);
            }
            AllOrNothing::Taken
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.with_state(|s, now| s.remove(key).is_some_and(|e| e.expires_at > now)))
    }

    async fn delete_if_value(&self, keys: &[String], value: &str) -> Result<usize, KvError> {
        Ok(self.with_state(|s, now| {
            let mut deleted = 0;
            for key in keys {
                if s.live(key, now).is_some_and(|e| e.value == value) {
                    s.remove(key);
                    deleted += 1;
                }
            }
            deleted
        }))
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, KvError> {
        Ok(self.with_state(|s, now| s.live(key, now).map(|e| e.expires_at - now)))
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, KvError> {
        Ok(self.with_state(|s, now| {
            if s.live(key, now).is_none() {
                return false;
            }
            s.set_expiry(key, deadline(now, ttl));
            true
        }))
    }

    async fn extend_all_if_value(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, KvError> {
        Ok(self.with_state(|s, now| {
            let all_ours = keys
                .iter()
                .all(|k| s.live(k, now).is_some_and(|e| e.value == value));
            if !all_ours {
                return false;
            }
            let expires_at = deadline(now, ttl);
            for key in keys {
                s.set_expiry(key, expires_at);
            }
            true
        }))
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, KvError> {
        Ok(self.with_state(|s, now| {
            if s.live(key, now).map(|e| e.value.as_str()) != expected {
                return false;
            }
            s.insert(key, value.to_string(), deadline(now, ttl));
            true
        }))
    }

    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, KvError> {
        self.with_state(|s, now| {
            let (current, expires_at) = match s.live(key, now) {
                Some(entry) => {
                    let current = entry.value.parse::<i64>().map_err(|_| {
                        KvError::Backend(format!("value at {key} is not an integer"))
                    })?;
                    (current, entry.expires_at)
                }
                None => (0, deadline(now, ttl)),
            };
            let next = current
                .checked_add(by)
                .ok_or_else(|| KvError::Backend(format!("increment of {key} overflows")))?;
            s.insert(key, next.to_string(), expires_at);
            Ok(next)
        })
    }

    async fn index_add(
        &self,
        key: &str,
        member: &str,
        until_ms: i64,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<(), KvError> {
        // The index is a JSON object of member → instant, changed under the store's lock.
        self.with_state(|s, now| {
            let mut index = index_of(s.live(key, now).map(|e| e.value.as_str()))?;
            index.retain(|_, until| *until >= now_ms);
            index.insert(member.to_string(), until_ms);
            let value =
                serde_json::to_string(&index).map_err(|e| KvError::Backend(e.to_string()))?;
            s.insert(key, value, deadline(now, ttl));
            Ok(())
        })
    }

    async fn index_members(&self, key: &str, now_ms: i64) -> Result<Vec<String>, KvError> {
        self.with_state(|s, now| {
            let index = index_of(s.live(key, now).map(|e| e.value.as_str()))?;
            Ok(index
                .into_iter()
                .filter(|(_, until)| *until > now_ms)
                .map(|(member, _)| member)
                .collect())
        })
    }

    async fn ping(&self) -> Result<(), KvError> {
        Ok(())
    }
}

/// An index as [`MemoryStore::index_add`] keeps it.
fn index_of(value: Option<&str>) -> Result<HashMap<String, i64>, KvError> {
    value.map_or_else(
        || Ok(HashMap::new()),
        |json| {
            serde_json::from_str(json)
                .map_err(|_| KvError::Backend("the value is not an index".into()))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_purge_task_removes_expired_keys_without_reads() {
        let store = MemoryStore::new();
        store
            .set("a", "1", Duration::from_millis(30))
            .await
            .unwrap();
        store.set("b", "1", Duration::from_secs(60)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let state = store.shared.lock();
        assert!(!state.entries.contains_key("a"), "expired key still stored");
        assert!(state.entries.contains_key("b"));
        assert_eq!(state.expirations.len(), 1);
    }

    #[tokio::test]
    async fn dropping_the_store_stops_its_purge_task() {
        let store = MemoryStore::new();
        let shared = store.shared.clone();
        drop(store);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            Arc::strong_count(&shared),
            1,
            "the purge task still holds the state"
        );
    }
}
