//! Revocation that reaches every service: access tokens are checked statelessly everywhere, so
//! the gateway also asks the TTL store whether a token's session was revoked (logout, refresh
//! reuse, the session cap) or its user's role changed since it was issued, and answers 401
//! `SESSION_ENDED` if so. Auth writes both facts, each for as long as an access token lives
//! (`holdfast_common::auth::revoked_session_key`, `role_changed_key`).
//!
//! What the store said of a session is kept here for [`FRESH_FOR`], so a busy client costs one
//! store read per second per gateway: a revocation or role change takes effect everywhere
//! within that bound. If the store cannot be asked, the token is let through (and a warning
//! logged): the store being down should not take the whole API down with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use holdfast_common::auth::{Claims, revoked_session_key, role_changed_key};
use holdfast_common::kv::TtlStore;
use holdfast_common::sync::lock;

/// How long what the store said of a session is trusted here.
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

/// The gateway's view of revoked sessions and changed roles.
pub struct Revocations {
    kv: Arc<dyn TtlStore>,
    /// By `<sid> <user>`.
    known: Mutex<HashMap<String, Facts>>,
}

impl Revocations {
    pub fn new(kv: Arc<dyn TtlStore>) -> Self {
        Self {
            kv,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the token with `claims` (already verified) still stands.
    pub async fn admits(&self, claims: &Claims) -> bool {
        let key = format!("{} {}", claims.sid, claims.sub);
        let now = Instant::now();
        if let Some(facts) = lock(&self.known).get(&key)
            && now.duration_since(facts.read_at) < FRESH_FOR
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
        };
        let mut known = lock(&self.known);
        if known.len() >= MAX_REMEMBERED {
            known.retain(|_, f| now.duration_since(f.read_at) < FRESH_FOR);
        }
        known.insert(key, facts);
        facts.admit(claims)
    }
}
