//! Sessions and rotating refresh tokens, kept in the TTL store, in state that does not grow
//! with use.
//!
//! - `auth:session:{sid}` → the session record: the user, when the session ends, the hash of
//!   its current refresh token and when that was issued, and the hashes of the last
//!   [`SPENT_KEPT`] tokens it replaced. It lives until the session ends (`SESSION_TTL_SECONDS`
//!   after it started); revoking deletes it. A session is one key however often it refreshes.
//! - `auth:user-sessions:{userId}` → the user's last `MAX_SESSIONS_PER_USER` session ids,
//!   oldest first. Starting one more ends the oldest, so a user never has more live sessions.
//!
//! A refresh token is `base64url(session id ‖ 32 random bytes)`: it names its session, and only
//! its hash is stored, so a copy of the store hands out no working token. It works once, for
//! `REFRESH_TOKEN_TTL_SECONDS` at most. Rotating is one compare-and-set of the record, so of two
//! concurrent refreshes with one token exactly one wins.
//!
//! Reuse detection (RFC 9700 §4.14.2): presenting a token the session already replaced means it
//! leaked, or the legitimate client is racing an attacker; either way the whole session is
//! revoked. Only the last [`SPENT_KEPT`] replaced tokens are remembered: an older one no longer
//! refreshes anything either, it is merely not recognised as reuse.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_common::kv::{self, KvError, TtlStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::user::now_millis;

/// How many replaced refresh tokens of a session are remembered for reuse detection.
pub const SPENT_KEPT: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct SessionRecord {
    user_id: String,
    ends_at_ms: i64,
    /// Hash of the refresh token that works now.
    current: String,
    issued_at_ms: i64,
    /// Hashes of the tokens it replaced, oldest first.
    spent: Vec<String>,
}

/// A newly started or refreshed session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub sid: String,
    pub user_id: String,
    pub refresh_token: String,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid and is now spent; here is its successor.
    Rotated(Grant),
    /// The token had been rotated before: its session is now revoked.
    Reused,
    /// Unknown, expired, or its session has ended.
    Invalid,
}

/// The limits sessions live by.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub session_ttl: Duration,
    pub refresh_ttl: Duration,
    pub max_per_user: usize,
    /// How long an access token lives: a revoked session stays marked revoked that long.
    pub access_ttl: Duration,
}

#[derive(Clone)]
pub struct Sessions {
    kv: Arc<dyn TtlStore>,
    policy: SessionPolicy,
}

fn session_key(sid: &str) -> String {
    format!("auth:session:{sid}")
}

fn user_sessions_key(user_id: &str) -> String {
    format!("auth:user-sessions:{user_id}")
}

fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// A new token for session `sid`: its 16 bytes, then 256 random bits (two v4 UUIDs' worth of
/// randomness, 244 bits).
fn new_refresh_token(sid: Uuid) -> String {
    let mut bytes = [0u8; 48];
    bytes[..16].copy_from_slice(sid.as_bytes());
    bytes[16..32].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[32..].copy_from_slice(Uuid::new_v4().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The session a token names, if it has the shape of one of ours.
fn session_of_token(token: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() != 48 {
        return None;
    }
    Uuid::from_slice(&bytes[..16]).ok()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The TTL for a record of a session ending at `ends_at_ms`; `None` once it has ended.
fn time_left(ends_at_ms: i64) -> Option<Duration> {
    let left = ends_at_ms.saturating_sub(now_millis());
    (left > 0).then(|| Duration::from_millis(left.unsigned_abs()))
}

fn encode<T: Serialize>(value: &T) -> String {
    // Plain structs of strings and integers always serialise.
    serde_json::to_string(value).unwrap_or_default()
}

impl Sessions {
    pub fn new(kv: Arc<dyn TtlStore>, policy: SessionPolicy) -> Self {
        Self { kv, policy }
    }

    /// Starts a session for `user_id` with its first refresh token, ending the user's oldest
    /// sessions beyond the cap.
    pub async fn start(&self, user_id: &str) -> Result<Grant, KvError> {
        let sid = Uuid::new_v4();
        let refresh_token = new_refresh_token(sid);
        let now = now_millis();
        let record = SessionRecord {
            user_id: user_id.to_string(),
            ends_at_ms: now.saturating_add(millis(self.policy.session_ttl)),
            current: token_hash(&refresh_token),
            issued_at_ms: now,
            spent: Vec::new(),
        };
        let sid = sid.to_string();
        self.kv
            .set(
                &session_key(&sid),
                &encode(&record),
                self.policy.session_ttl,
            )
            .await?;
        let cap = self.policy.max_per_user;
        let ended = kv::update(&*self.kv, &user_sessions_key(user_id), |current| {
            let mut sids: Vec<String> = current
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or_default();
            sids.push(sid.clone());
            let ended: Vec<String> = sids.drain(..sids.len().saturating_sub(cap)).collect();
            (Some((encode(&sids), self.policy.session_ttl)), ended)
        })
        .await?;
        for old in ended {
            tracing::info!(user_id, sid = %old, "session cap reached; the oldest session ends");
            self.revoke(&old).await?;
        }
        Ok(Grant {
            sid,
            user_id: user_id.to_string(),
            refresh_token,
        })
    }

    async fn record(&self, sid: &str) -> Result<Option<SessionRecord>, KvError> {
        let raw = self.kv.get(&session_key(sid)).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Whether session `sid` is still live (not expired, not revoked).
    pub async fn is_live(&self, sid: &str) -> Result<bool, KvError> {
        Ok(self.record(sid).await?.is_some())
    }

    /// Spends `token` and issues its successor, or detects reuse (see the module docs).
    pub async fn rotate(&self, token: &str) -> Result<Rotation, KvError> {
        let Some(session) = session_of_token(token) else {
            return Ok(Rotation::Invalid);
        };
        let sid = session.to_string();
        let presented = token_hash(token);
        let successor = new_refresh_token(session);
        let refresh_ttl = millis(self.policy.refresh_ttl);
        let rotation = kv::update(&*self.kv, &session_key(&sid), |current| {
            let Some(mut record) =
                current.and_then(|c| serde_json::from_str::<SessionRecord>(c).ok())
            else {
                return (None, Rotation::Invalid);
            };
            if record.spent.contains(&presented) {
                return (None, Rotation::Reused);
            }
            let now = now_millis();
            let Some(ttl) = time_left(record.ends_at_ms) else {
                return (None, Rotation::Invalid);
            };
            if record.current != presented || now >= record.issued_at_ms.saturating_add(refresh_ttl)
            {
                return (None, Rotation::Invalid);
            }
            record.spent.push(std::mem::replace(
                &mut record.current,
                token_hash(&successor),
            ));
            let excess = record.spent.len().saturating_sub(SPENT_KEPT);
            record.spent.drain(..excess);
            record.issued_at_ms = now;
            let grant = Grant {
                sid: sid.clone(),
                user_id: record.user_id.clone(),
                refresh_token: successor.clone(),
            };
            (Some((encode(&record), ttl)), Rotation::Rotated(grant))
        })
        .await?;
        if rotation == Rotation::Reused {
            tracing::warn!(%sid, "refresh token reused; revoking the session");
            self.revoke(&sid).await?;
        }
        Ok(rotation)
    }

    /// The live session a refresh token belongs to, if the token is or was one of its tokens.
    pub async fn session_of(&self, token: &str) -> Result<Option<String>, KvError> {
        let Some(sid) = session_of_token(token).map(|s| s.to_string()) else {
            return Ok(None);
        };
        let hash = token_hash(token);
        Ok(self
            .record(&sid)
            .await?
            .filter(|r| r.current == hash || r.spent.contains(&hash))
            .map(|_| sid))
    }

    /// Ends session `sid`: its refresh tokens stop refreshing, and its access tokens stop
    /// being accepted, by auth at once and everywhere else through the gateway (which reads the
    /// revoked mark, kept as long as an access token lives).
    pub async fn revoke(&self, sid: &str) -> Result<(), KvError> {
        self.kv
            .set(
                &holdfast_common::auth::revoked_session_key(sid),
                "1",
                self.policy.access_ttl,
            )
            .await?;
        holdfast_common::auth::count_revocation(&*self.kv).await?;
        self.kv.delete(&session_key(sid)).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_common::kv::MemoryStore;

    fn sessions() -> Sessions {
        Sessions::new(
            Arc::new(MemoryStore::new()),
            SessionPolicy {
                session_ttl: Duration::from_secs(60),
                refresh_ttl: Duration::from_secs(60),
                max_per_user: 3,
                access_ttl: Duration::from_secs(60),
            },
        )
    }

    #[tokio::test]
    async fn a_refresh_token_rotates_once_and_its_reuse_revokes_the_session() {
        let sessions = sessions();
        let first = sessions.start("u1").await.unwrap();
        let Rotation::Rotated(second) = sessions.rotate(&first.refresh_token).await.unwrap() else {
            panic!("first rotation must succeed")
        };
        assert_eq!(
            (second.sid.as_str(), second.user_id.as_str()),
            (first.sid.as_str(), "u1")
        );
        assert_ne!(second.refresh_token, first.refresh_token);

        assert_eq!(
            sessions.rotate(&first.refresh_token).await.unwrap(),
            Rotation::Reused
        );
        assert!(!sessions.is_live(&first.sid).await.unwrap());
        // The successor dies with its session.
        assert_eq!(
            sessions.rotate(&second.refresh_token).await.unwrap(),
            Rotation::Invalid
        );
    }

    #[tokio::test]
    async fn concurrent_refreshes_with_one_token_let_exactly_one_through() {
        let sessions = sessions();
        let grant = sessions.start("u1").await.unwrap();
        let attempts = (0..8).map(|_| {
            let (sessions, token) = (sessions.clone(), grant.refresh_token.clone());
            tokio::spawn(async move { sessions.rotate(&token).await.unwrap() })
        });
        let outcomes = futures_util::future::join_all(attempts).await;
        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(Rotation::Rotated(_))))
            .count();
        assert_eq!(rotated, 1);
    }

    #[tokio::test]
    async fn unknown_tokens_and_revoked_sessions_do_not_refresh() {
        let sessions = sessions();
        assert_eq!(sessions.rotate("made-up").await.unwrap(), Rotation::Invalid);
        let grant = sessions.start("u1").await.unwrap();
        assert_eq!(
            sessions.session_of(&grant.refresh_token).await.unwrap(),
            Some(grant.sid.clone())
        );
        sessions.revoke(&grant.sid).await.unwrap();
        assert_eq!(
            sessions.rotate(&grant.refresh_token).await.unwrap(),
            Rotation::Invalid
        );
    }

    #[tokio::test]
    async fn a_user_never_has_more_sessions_than_the_cap() {
        let sessions = sessions();
        let mut grants = Vec::new();
        for _ in 0..5 {
            grants.push(sessions.start("u1").await.unwrap());
        }
        let live: Vec<bool> =
            futures_util::future::join_all(grants.iter().map(|g| sessions.is_live(&g.sid)))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        assert_eq!(
            live,
            [false, false, true, true, true],
            "the oldest end first"
        );
        assert_eq!(
            sessions.rotate(&grants[0].refresh_token).await.unwrap(),
            Rotation::Invalid
        );
        // Another user's sessions are not touched.
        let other = sessions.start("u2").await.unwrap();
        assert!(sessions.is_live(&other.sid).await.unwrap());
    }

    #[tokio::test]
    async fn rotating_often_keeps_one_key_per_session() {
        let store = Arc::new(MemoryStore::new());
        let sessions = Sessions::new(
            store.clone(),
            SessionPolicy {
                session_ttl: Duration::from_secs(60),
                refresh_ttl: Duration::from_secs(60),
                max_per_user: 3,
                access_ttl: Duration::from_secs(60),
            },
        );
        let first = sessions.start("u1").await.unwrap();
        let mut tokens = vec![first.refresh_token.clone()];
        for _ in 0..50 {
            let Rotation::Rotated(next) = sessions.rotate(tokens.last().unwrap()).await.unwrap()
            else {
                panic!("rotation of the current token")
            };
            tokens.push(next.refresh_token);
        }
        // The session record and the user's session list, whatever the number of rotations.
        assert_eq!(store.len(), 2);
        // A token replaced long ago no longer works and is not taken for reuse...
        assert_eq!(
            sessions.rotate(&tokens[0]).await.unwrap(),
            Rotation::Invalid
        );
        assert!(sessions.is_live(&first.sid).await.unwrap());
        // ...a recently replaced one is, and ends the session.
        assert_eq!(
            sessions.rotate(&tokens[tokens.len() - 2]).await.unwrap(),
            Rotation::Reused
        );
        assert!(!sessions.is_live(&first.sid).await.unwrap());
    }

    #[tokio::test]
    async fn a_refresh_token_expires_before_its_session() {
        let sessions = Sessions::new(
            Arc::new(MemoryStore::new()),
            SessionPolicy {
                session_ttl: Duration::from_secs(60),
                refresh_ttl: Duration::from_millis(100),
                max_per_user: 3,
                access_ttl: Duration::from_secs(60),
            },
        );
        let grant = sessions.start("u1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            sessions.rotate(&grant.refresh_token).await.unwrap(),
            Rotation::Invalid
        );
        assert!(sessions.is_live(&grant.sid).await.unwrap());
    }
}
