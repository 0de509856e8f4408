//! Simulated payment intents, kept in the TTL store for 15 minutes unless consumed.
//!
//! An intent belongs to the user who created it and records amount (minor units) and currency.
//! Confirming it needs its client secret. Creating it with `"simulate": "decline"` makes the
//! confirmation fail (402 `PAYMENT_DECLINED`), so clients can test that path. A purchase
//! consumes an intent; the orders store's unique index on the intent id is what guarantees an
//! intent pays for at most one order, even if marking it consumed here were lost.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::kv::{KvError, TtlStore};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    RequiresConfirmation,
    Succeeded,
    Failed,
    Consumed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub id: String,
    pub user_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub client_secret: String,
    pub status: IntentStatus,
    /// Set when created with `simulate: "decline"`.
    pub decline: bool,
}

fn key(id: &str) -> String {
    format!("intent:{id}")
}

#[derive(Clone)]
pub struct Payments {
    kv: Arc<dyn TtlStore>,
    ttl: Duration,
}

impl Payments {
    pub fn new(kv: Arc<dyn TtlStore>, ttl: Duration) -> Self {
        Self { kv, ttl }
    }

    pub async fn create(
        &self,
        user_id: &str,
        amount_minor: i64,
        currency: &str,
        decline: bool,
    ) -> Result<Intent, KvError> {
        let intent = Intent {
            id: format!("pi_{}", uuid::Uuid::new_v4().simple()),
            user_id: user_id.to_string(),
            amount_minor,
            currency: currency.to_string(),
            client_secret: format!("secret_{}", uuid::Uuid::new_v4().simple()),
            status: IntentStatus::RequiresConfirmation,
            decline,
        };
        self.save(&intent).await?;
        Ok(intent)
    }

    async fn save(&self, intent: &Intent) -> Result<(), KvError> {
        let json = serde_json::to_string(intent).map_err(|e| KvError::Backend(e.to_string()))?;
        // Keeping the original expiry would need the remaining TTL; a status change within the
        // 15 minutes simply restarts them, which only matters to an intent being paid right now.
        self.kv.set(&key(&intent.id), &json, self.ttl).await
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
        Ok(intent)
    }
}
