//! The TTL key-value store port: holds, sessions, refresh tokens, in-flight idempotency keys.
//!
//! Two adapters implement [`TtlStore`]: [`RedisStore`] (`REDIS_URL` set) and [`MemoryStore`]
//! (in-process, the default). Every key carries a TTL. The multi-key operations are atomic on
//! both: a Lua script on Redis, one critical section in memory. On Redis Cluster, the keys of
//! one multi-key call must share a hash tag (`hold:{<eventId>}:R1-S1`); callers name them so.

mod memory;
mod redis;
#[cfg(test)]
mod tests;

use std::time::Duration;

use async_trait::async_trait;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

/// A failure of the store itself (never "key not found", which is a normal answer).
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("TTL store unavailable: {0}")]
    Unavailable(String),
    #[error("TTL store error: {0}")]
    Backend(String),
}

/// The outcome of [`TtlStore::set_all_if_absent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllOrNothing {
    /// Every key was absent and is now set.
    Taken,
    /// Nothing was set: these keys already existed (in the order they were asked for).
    Conflicts(Vec<String>),
}

/// A key-value store whose keys expire. Values are strings (JSON where structured).
#[async_trait]
pub trait TtlStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<String>, KvError>;

    /// The values of `keys` in one round trip, `None` for missing ones, in order.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError>;

    /// Sets `key` to `value`, replacing any value, expiring after `ttl`.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), KvError>;

    /// Sets `key` only if it does not exist; answers whether it did.
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError>;

    /// Sets every key to `value` if none exists, atomically; otherwise sets nothing.
    async fn set_all_if_absent(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<AllOrNothing, KvError>;

    /// Removes `key`; answers whether it existed.
    async fn delete(&self, key: &str) -> Result<bool, KvError>;

    /// Removes those of `keys` whose value is `value`, atomically; answers how many.
    ///
    /// Guarding on the value keeps a stale owner (a hold that already expired) from deleting
    /// keys somebody else has taken since.
    async fn delete_if_value(&self, keys: &[String], value: &str) -> Result<usize, KvError>;

    /// Time left before `key` expires; `None` when it does not exist.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, KvError>;

    /// Sets a new TTL on an existing key; answers whether it existed.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, KvError>;

    /// Sets `ttl` on every key if all of them exist with value `value`, atomically; otherwise
    /// changes nothing. Answers whether it extended them.
    async fn extend_all_if_value(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, KvError>;

    /// Sets `key` to `value` (expiring after `ttl`) only if its current value is `expected`
    /// (`None`: only if it does not exist), atomically; answers whether it did.
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, KvError>;

    /// Adds `by` to the integer at `key` (0 when absent) and answers the new value. A key created
    /// by this call expires after `ttl`; an existing key keeps its expiry.
    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, KvError>;

    /// Adds `member` to the index at `key`, where it counts until `until_ms` (Unix ms; adding
    /// it again moves that instant), and forgets members whose instant is before `now_ms`. The
    /// index expires `ttl` after its last addition. For small per-owner lists (a user's holds)
    /// that must not cost a read-modify-write on a hot path.
    async fn index_add(
        &self,
        key: &str,
        member: &str,
        until_ms: i64,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<(), KvError>;

    /// The members of the index at `key` that count beyond `now_ms`, in no particular order.
    async fn index_members(&self, key: &str, now_ms: i64) -> Result<Vec<String>, KvError>;

    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), KvError>;
}

/// How often [`update`] retries when other writers keep changing the key under it.
const UPDATE_ATTEMPTS: usize = 32;

/// What [`update`]'s step decides: the key's next value and TTL (`None`: leave it as it is),
/// and what to answer.
pub type Update<T> = (Option<(String, Duration)>, T);

/// Reads `key`, lets `step` compute its next value from the current one, and writes it only if
/// nobody wrote in between ([`TtlStore::compare_and_set`]), running `step` again on the newer
/// value otherwise. For small per-user records (a user's sessions, their live payment intents)
/// that several requests may change at once.
pub async fn update<T>(
    store: &dyn TtlStore,
    key: &str,
    mut step: impl FnMut(Option<&str>) -> Update<T>,
) -> Result<T, KvError> {
    for _ in 0..UPDATE_ATTEMPTS {
        let current = store.get(key).await?;
        let (next, answer) = step(current.as_deref());
        let Some((value, ttl)) = next else {
            return Ok(answer);
        };
        if store
            .compare_and_set(key, current.as_deref(), &value, ttl)
            .await?
        {
            return Ok(answer);
        }
    }
    Err(KvError::Unavailable(format!(
        "{key} changed under every one of {UPDATE_ATTEMPTS} attempts"
    )))
}

/// A TTL in whole milliseconds, at least one: zero would mean "never expires" or an error.
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
