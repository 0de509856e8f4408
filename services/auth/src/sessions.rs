//! Sessions and rotating refresh tokens, kept in the TTL store.
//!
//! - `auth:session:{sid}` → user id; lives `SESSION_TTL_SECONDS`. Revoking a session deletes it.
//! - `auth:refresh:{sha256(token)}` → `{sid, userId}`; lives `REFRESH_TOKEN_TTL_SECONDS`.
//!   Only the hash is stored, so a copy of the store does not hand out working tokens.
//! - `auth:refresh-used:{sha256(token)}` marks a token as rotated. Claiming it is one atomic
//!   set-if-absent, so of two concurrent refreshes with one token exactly one wins.
//!
//! Reuse detection (RFC 9700 §4.14.2): presenting a token that was already rotated means it
//! leaked, or the legitimate client is racing an attacker; either way the whole session is
//! revoked and every token of it stops working.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_common::kv::{KvError, TtlStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct RefreshRecord {
    sid: String,
    user_id: String,
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

#[derive(Clone)]
pub struct Sessions {
    kv: Arc<dyn TtlStore>,
    session_ttl: Duration,
    refresh_ttl: Duration,
}

fn session_key(sid: &str) -> String {
    format!("auth:session:{sid}")
}

fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

fn refresh_key(token: &str) -> String {
    format!("auth:refresh:{}", token_hash(token))
}

fn used_key(token: &str) -> String {
    format!("auth:refresh-used:{}", token_hash(token))
}

/// 244 random bits (two v4 UUIDs), URL-safe.
fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    pub fn new(kv: Arc<dyn TtlStore>, session_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            kv,
            session_ttl,
            refresh_ttl,
        }
    }

    /// Starts a session for `user_id` with its first refresh token.
    pub async fn start(&self, user_id: &str) -> Result<Grant, KvError> {
        let sid = uuid::Uuid::new_v4().to_string();
        self.kv
            .set(&session_key(&sid), user_id, self.session_ttl)
            .await?;
        self.grant(sid, user_id.to_string()).await
    }

    async fn grant(&self, sid: String, user_id: String) -> Result<Grant, KvError> {
        let refresh_token = new_refresh_token();
        let record = RefreshRecord {
            sid: sid.clone(),
            user_id: user_id.clone(),
        };
        let record = serde_json::to_string(&record).map_err(|e| KvError::Backend(e.to_string()))?;
        self.kv
            .set(&refresh_key(&refresh_token), &record, self.refresh_ttl)
            .await?;
        Ok(Grant {
            sid,
            user_id,
            refresh_token,
        })
    }

    /// Whether session `sid` is still live (not expired, not revoked).
    pub async fn is_live(&self, sid: &str) -> Result<bool, KvError> {
        Ok(self.kv.get(&session_key(sid)).await?.is_some())
    }

    /// Spends `token` and issues its successor, or detects reuse (see the module docs).
    pub async fn rotate(&self, token: &str) -> Result<Rotation, KvError> {
        let Some(raw) = self.kv.get(&refresh_key(token)).await? else {
            return Ok(Rotation::Invalid);
        };
        let Ok(record) = serde_json::from_str::<RefreshRecord>(&raw) else {
            return Ok(Rotation::Invalid);
        };
        if !self
            .kv
            .set_if_absent(&used_key(token), "1", self.refresh_ttl)
            .await?
        {
            tracing::warn!(sid = %record.sid, user_id = %record.user_id, "refresh token reused; revoking the session");
            self.revoke(&record.sid).await?;
            return Ok(Rotation::Reused);
        }
        if !self.is_live(&record.sid).await? {
            return Ok(Rotation::Invalid);
        }
        Ok(Rotation::Rotated(
            self.grant(record.sid, record.user_id).await?,
        ))
    }

    /// The session a refresh token belongs to, if the token is known.
    pub async fn session_of(&self, token: &str) -> Result<Option<String>, KvError> {
        let raw = self.kv.get(&refresh_key(token)).await?;
        Ok(raw
            .and_then(|r| serde_json::from_str::<RefreshRecord>(&r).ok())
            .map(|r| r.sid))
    }

    /// Ends session `sid`: its access tokens stop being accepted by auth and its refresh tokens
    /// stop refreshing.
    pub async fn revoke(&self, sid: &str) -> Result<(), KvError> {
        self.kv.delete(&session_key(sid)).await.map(|_| ())
    }

    /// Forgets one refresh token.
    pub async fn forget_refresh(&self, token: &str) -> Result<(), KvError> {
        self.kv.delete(&refresh_key(token)).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_common::kv::MemoryStore;

    fn sessions() -> Sessions {
        Sessions::new(
            Arc::new(MemoryStore::new()),
            Duration::from_secs(60),
            Duration::from_secs(60),
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
}
