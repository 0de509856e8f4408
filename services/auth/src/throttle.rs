//! A per-account throttle on failed logins: guessing one account's password from many client
//! addresses (which the per-address credentials limit cannot stop) gets slower and slower,
//! while the account's owner is held up for minutes at most.
//!
//! The first [`FREE_FAILURES`] failures in a row cost nothing. After that, each attempt must
//! wait twice as long after the last failure as the one before (1 s, 2 s, 4 s… up to
//! [`MAX_DELAY`]); earlier attempts get 429 `LOGIN_THROTTLED` with `Retry-After`, before any
//! password is checked. A successful login clears the count, and so does [`WINDOW`] without a
//! failure. Unknown addresses are counted like known ones, so the throttle tells nothing about
//! which accounts exist. The count is one key in the TTL store per address tried, expiring.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::kv::{KvError, TtlStore};

use crate::domain::user::Email;

/// Failures in a row that are not slowed down.
pub const FREE_FAILURES: i64 = 5;
/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// A count is forgotten this long after its last failure.
pub const WINDOW: Duration = Duration::from_secs(900);

/// Failed logins per account, in the TTL store.
#[derive(Clone)]
pub struct LoginThrottle {
    kv: Arc<dyn TtlStore>,
}

/// How long after the last of `failures` failures the next attempt may come.
pub fn delay_after(failures: i64) -> Duration {
    let over = failures - FREE_FAILURES;
    if over < 0 {
        return Duration::ZERO;
    }
    let seconds = 1_u64
        .checked_shl(u32::try_from(over).unwrap_or(u32::MAX))
        .unwrap_or(u64::MAX);
    Duration::from_secs(seconds).min(MAX_DELAY)
}

fn key(email: &Email) -> String {
    format!("auth:login-failures:{}", email.as_str())
}

impl LoginThrottle {
    pub fn new(kv: Arc<dyn TtlStore>) -> Self {
        Self { kv }
    }

    /// `None` when `email` may try now; else how long until it may.
    pub async fn wait(&self, email: &Email) -> Result<Option<Duration>, KvError> {
        let key = key(email);
        let failures: i64 = match self.kv.get(&key).await? {
            Some(count) => count.parse().unwrap_or(0),
            None => return Ok(None),
        };
        let delay = delay_after(failures);
        if delay.is_zero() {
            return Ok(None);
        }
        // The key's expiry was renewed at the last failure: its age is what is left of it.
        let left = self.kv.ttl(&key).await?.unwrap_or_default();
        let since_last = WINDOW.saturating_sub(left);
        Ok((since_last < delay).then(|| delay - since_last))
    }

    pub async fn failed(&self, email: &Email) -> Result<(), KvError> {
        let key = key(email);
        self.kv.increment(&key, 1, WINDOW).await?;
        self.kv.expire(&key, WINDOW).await?;
        Ok(())
    }

    pub async fn succeeded(&self, email: &Email) -> Result<(), KvError> {
        self.kv.delete(&key(email)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_failures_up_to_the_cap() {
        assert_eq!(delay_after(0), Duration::ZERO);
        assert_eq!(delay_after(FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(delay_after(FREE_FAILURES), Duration::from_secs(1));
        assert_eq!(delay_after(FREE_FAILURES + 3), Duration::from_secs(8));
        assert_eq!(delay_after(FREE_FAILURES + 30), MAX_DELAY);
        assert_eq!(delay_after(i64::MAX), MAX_DELAY);
    }
}
