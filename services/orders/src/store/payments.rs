//! Simulated payment intents, kept in the TTL store for `PAYMENT_INTENT_TTL_SECONDS` (a status
//! change keeps the original expiry).
//!
//! A user has at most `MAX_PAYMENT_INTENTS_PER_USER` unspent intents: `intents:user:{userId}`
//! lists theirs with their expiry, updated with a compare-and-set so concurrent creations
//! cannot both squeeze under the cap. Consumed and failed intents leave the list at once,
//! expired ones when the list is next read.
//!
//! An intent belongs to the user who created it and records amount (minor units) and currency.
//! Confirming it needs its client secret. Creating it with `"simulate": "decline"` makes the
//! confirmation fail (402 `PAYMENT_DECLINED`), so clients can test that path. A purchase
//! consumes an intent; the orders store's unique index on the intent id is what guarantees an
//! intent pays for at most one order, even if marking it consumed here were lost.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::kv::{self, KvError, TtlStore};
use serde::Serialize;

use crate::domain::intent::{Intent, IntentStatus};
use crate::domain::now_millis;

/// Why an intent could not be created.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("you already have {0} unspent payment intents; use one or let one expire first")]
    TooMany(usize),
    #[error(transparent)]
    Store(#[from] KvError),
}

fn key(id: &str) -> String {
    format!("intent:{id}")
}

fn user_key(user_id: &str) -> String {
    format!("intents:user:{user_id}")
}

/// `(intent id, expiry in ms)` of a user's unspent intents.
type Unspent = Vec<(String, i64)>;

fn unspent(raw: Option<&str>, now: i64) -> Unspent {
    let mut list: Unspent = raw
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    list.retain(|(_, expires_at_ms)| *expires_at_ms > now);
    list
}

fn encode<T: Serialize>(value: &T) -> Result<String, KvError> {
    serde_json::to_string(value).map_err(|e| KvError::Backend(e.to_string()))
}

#[derive(Clone)]
pub struct Payments {
    kv: Arc<dyn TtlStore>,
    ttl: Duration,
    max_per_user: usize,
}

impl Payments {
    pub fn new(kv: Arc<dyn TtlStore>, ttl: Duration, max_per_user: usize) -> Self {
        Self {
            kv,
            ttl,
            max_per_user,
        }
    }

    pub async fn create(
        &self,
        user_id: &str,
        amount_minor: i64,
        currency: &str,
        decline: bool,
    ) -> Result<Intent, IntentError> {
        let now = now_millis();
        let intent = Intent {
            id: format!("pi_{}", uuid::Uuid::new_v4().simple()),
            user_id: user_id.to_string(),
            amount_minor,
            currency: currency.to_string(),
            client_secret: format!("secret_{}", uuid::Uuid::new_v4().simple()),
            status: IntentStatus::RequiresConfirmation,
            decline,
            expires_at_ms: now
                .saturating_add(i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)),
        };
        let cap = self.max_per_user;
        let admitted = kv::update(&*self.kv, &user_key(user_id), |current| {
            let mut list = unspent(current, now);
            if list.len() >= cap {
                return (None, Ok(false));
            }
            list.push((intent.id.clone(), intent.expires_at_ms));
            match encode(&list) {
                Ok(json) => (Some((json, self.ttl)), Ok(true)),
                Err(error) => (None, Err(error)),
            }
        })
        .await??;
        if !admitted {
            return Err(IntentError::TooMany(cap));
        }
        self.save(&intent).await?;
        Ok(intent)
    }

    async fn save(&self, intent: &Intent) -> Result<(), KvError> {
        let left = intent.expires_at_ms.saturating_sub(now_millis()).max(1);
        let ttl = Duration::from_millis(left.unsigned_abs());
        self.kv.set(&key(&intent.id), &encode(intent)?, ttl).await
    }

    /// Takes a spent (consumed or failed) intent off its user's list of unspent ones.
    async fn forget_unspent(&self, intent: &Intent) -> Result<(), KvError> {
        let now = now_millis();
        kv::update(&*self.kv, &user_key(&intent.user_id), |current| {
            let mut list = unspent(current, now);
            let before = list.len();
            list.retain(|(id, _)| *id != intent.id);
            if list.len() == before {
                return (None, Ok(()));
            }
            match encode(&list) {
                Ok(json) => (Some((json, self.ttl)), Ok(())),
                Err(error) => (None, Err(error)),
            }
        })
        .await?
    }

    /// The intent if it exists and belongs to `user_id` (someone else's is "not found").
    pub async fn owned(&self, id: &str, user_id: &str) -> Result<Option<Intent>, KvError> {
        let raw = self.kv.get(&key(id)).await?;
        Ok(raw
            .and_then(|r| serde_json::from_str::<Intent>(&r).ok())
            .filter(|i| i.user_id == user_id))
    }

    pub async fn set_status(
        &self,
        mut intent: Intent,
        status: IntentStatus,
    ) -> Result<Intent, KvError> {
        intent.status = status;
        self.save(&intent).await?;
        if matches!(status, IntentStatus::Consumed | IntentStatus::Failed) {
            self.forget_unspent(&intent).await?;
        }
        Ok(intent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_common::kv::MemoryStore;

    fn payments(ttl: Duration) -> (Payments, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        (Payments::new(store.clone(), ttl, 3), store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_creations_never_exceed_the_cap() {
        let (payments, _) = payments(Duration::from_secs(60));
        let creations = (0..10).map(|_| {
            let payments = payments.clone();
            tokio::spawn(async move { payments.create("u1", 100, "INR", false).await })
        });
        let outcomes = futures_util::future::join_all(creations).await;
        let created: Vec<Intent> = outcomes
            .into_iter()
            .filter_map(|o| o.unwrap().ok())
            .collect();
        assert_eq!(created.len(), 3);
        assert!(matches!(
            payments.create("u1", 100, "INR", false).await,
            Err(IntentError::TooMany(3))
        ));
        assert!(payments.create("u2", 100, "INR", false).await.is_ok());
        // A consumed intent frees its place; a confirmed one does not.
        let confirmed = payments
            .set_status(created[0].clone(), IntentStatus::Succeeded)
            .await
            .unwrap();
        assert!(payments.create("u1", 100, "INR", false).await.is_err());
        payments
            .set_status(confirmed, IntentStatus::Consumed)
            .await
            .unwrap();
        assert!(payments.create("u1", 100, "INR", false).await.is_ok());
    }

    #[tokio::test]
    async fn expired_intents_free_their_place_and_a_status_change_keeps_the_expiry() {
        let (payments, store) = payments(Duration::from_millis(300));
        let first = payments.create("u1", 100, "INR", false).await.unwrap();
        for _ in 0..2 {
            payments.create("u1", 100, "INR", false).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        payments
            .set_status(first, IntentStatus::Succeeded)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(payments.create("u1", 100, "INR", false).await.is_ok());
        // The three expired intents are gone from the store: the new one and the list remain.
        assert_eq!(store.len(), 2);
    }
}
