//! Revocation that reaches every service: access tokens are checked statelessly everywhere, so
//! the gateway also asks the TTL store whether a token's session was revoked (logout, refresh
//! reuse, the session cap) or its user's role changed since it was issued, and answers 401
//! `SESSION_ENDED` if so. Auth writes both facts, each for as long as an access token lives
//! (`holdfast_common::auth::revoked_session_key`, `role_changed_key`).
//!
//! Auth also counts every revocation it writes (`REVOCATIONS_GENERATION_KEY`, bumped after the
//! fact). The gateway reads that count at most once per [`FRESH_FOR`], and keeps what the store
//! said of a session for as long as the count stands: while nobody is logged out or changes
//! role, a token costs one store read per session and gateway, not one per request (a queue's
//! 100,000 people reading their place each cost a read per request otherwise). When the count
//! moves, or cannot be read, what is known is trusted for [`FRESH_FOR`] at most, as before: a
//! revocation or role change takes effect everywhere within that bound either way. If the
//! store cannot be asked, the token is let through (and a warning logged): the store being down
//! should not take the whole API down with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use holdfast_common::auth::{
    Claims, REVOCATIONS_GENERATION_KEY, revoked_session_key, role_changed_key,
};
use holdfast_common::kv::TtlStore;
use holdfast_common::sync::lock;

/// How long what the store said of a session, or of the revocation count, is trusted here
/// without the count confirming it.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Past this many sessions remembered, the stale ones are forgotten.
const MAX_REMEMBERED: usize = 100_000;

/// What the store said of one session and its user.
#[derive(Debug, Clone, Copy)]
struct Facts {
    revoked: bool,
    /// When the user's role last changed (Unix ms), if within a token's lifetime.
    role_changed_at: Option<u64>,
    read_at: Instant,
    /// The revocation count read before these facts, if it could be read.
    generation: Option<i64>,
}

impl Facts {
    /// A token stands if it was issued after its user's last role change.
    fn admit(&self, claims: &Claims) -> bool {
        !self.revoked
            && self
                .role_changed_at
                .is_none_or(|at| claims.issued_at_ms() > at)
    }
}

/// The revocation count as last read.
#[derive(Debug, Clone, Copy, Default)]
struct Generation {
    /// `None` when it could not be read.
    value: Option<i64>,
    read_at: Option<Instant>,
}

/// The gateway's view of revoked sessions and changed roles.
pub struct Revocations {
    kv: Arc<dyn TtlStore>,
    /// By `<sid> <user>`.
    known: Mutex<HashMap<String, Facts>>,
    generation: Mutex<Generation>,
}

impl Revocations {
    pub fn new(kv: Arc<dyn TtlStore>) -> Self {
        Self {
            kv,
            known: Mutex::new(HashMap::new()),
            generation: Mutex::default(),
        }
    }

    /// The revocation count, read again when the last read is [`FRESH_FOR`] old.
    async fn generation(&self) -> Option<i64> {
        let now = Instant::now();
        let last = *lock(&self.generation);
        if last
            .read_at
            .is_some_and(|at| now.duration_since(at) < FRESH_FOR)
        {
            return last.value;
        }
        let value = match self.kv.get(REVOCATIONS_GENERATION_KEY).await {
            // Absent (never counted, or expired) reads as 0: a change from any count.
            Ok(count) => Some(count.and_then(|c| c.parse().ok()).unwrap_or(0)),
            Err(error) => {
                tracing::warn!(%error, "the revocation count cannot be read");
                None
            }
        };
        *lock(&self.generation) = Generation {
            value,
            read_at: Some(now),
        };
        value
    }

    /// Whether the token with `claims` (already verified) still stands.
    pub async fn admits(&self, claims: &Claims) -> bool {
        let key = format!("{} {}", claims.sid, claims.sub);
        let generation = self.generation().await;
        let now = Instant::now();
        if let Some(facts) = lock(&self.known).get(&key)
            && ((generation.is_some() && facts.generation == generation)
                || now.duration_since(facts.read_at) < FRESH_FOR)
        {
            return facts.admit(claims);
        }
        let keys = [
            revoked_session_key(&claims.sid),
            role_changed_key(&claims.sub),
        ];
        let answer = match self.kv.get_many(&keys).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%error, "revocations cannot be read; token let through");
                return true;
            }
        };
        let facts = Facts {
            revoked: answer.first().is_some_and(Option::is_some),
            role_changed_at: answer
                .get(1)
                .and_then(|at| at.as_deref())
                .and_then(|at| at.parse().ok()),
            read_at: now,
            generation,
        };
        let mut known = lock(&self.known);
        if known.len() >= MAX_REMEMBERED {
            // What the current count still vouches for is kept; the rest, past its time, goes.
            known.retain(|_, f| {
                (generation.is_some() && f.generation == generation)
                    || now.duration_since(f.read_at) < FRESH_FOR
            });
            if known.len() >= MAX_REMEMBERED {
                // All still vouched for: forget every other one (they are read again when
                // they come back), so the work of this pass is spread over as many inserts.
                let mut keep = false;
                known.retain(|_, _| {
                    keep = !keep;
                    keep
                });
            }
        }
        known.insert(key, facts);
        facts.admit(claims)
    }
}

#[cfg(test)]
mod tests {
    use holdfast_common::auth::{Role, count_revocation};
    use holdfast_common::kv::MemoryStore;

    use super::*;

    fn claims(sid: &str, user: &str) -> Claims {
        Claims {
            sub: user.into(),
            user_id: user.into(),
            email: format!("{user}@example.com"),
            role: Role::User,
            sid: sid.into(),
            iat: 1,
            exp: u64::MAX,
            iat_ms: Some(1_000),
        }
    }

    /// Past [`FRESH_FOR`].
    async fn a_while() {
        tokio::time::sleep(FRESH_FOR + Duration::from_millis(100)).await;
    }

    #[tokio::test]
    async fn what_is_known_of_a_session_stands_until_the_revocation_count_moves() {
        let kv: Arc<dyn TtlStore> = Arc::new(MemoryStore::new());
        let revocations = Revocations::new(kv.clone());
        let (alice, bob) = (claims("s1", "u1"), claims("s2", "u2"));
        assert!(revocations.admits(&alice).await);
        assert!(revocations.admits(&bob).await);
        // Written but not counted (as auth never does): only the count says to look again,
        // so the session is not read again however long ago it was read.
        let minute = Duration::from_secs(60);
        kv.set(&revoked_session_key("s1"), "1", minute)
            .await
            .unwrap();
        a_while().await;
        assert!(
            revocations.admits(&alice).await,
            "kept while the count stands"
        );
        // Counted: within FRESH_FOR every session is read again.
        count_revocation(&*kv).await.unwrap();
        a_while().await;
        assert!(!revocations.admits(&alice).await);
        assert!(revocations.admits(&bob).await);
        // A role change is counted the same way.
        kv.set(&role_changed_key("u2"), "2000", minute)
            .await
            .unwrap();
        count_revocation(&*kv).await.unwrap();
        a_while().await;
        assert!(!revocations.admits(&bob).await, "issued before the change");
    }
}
