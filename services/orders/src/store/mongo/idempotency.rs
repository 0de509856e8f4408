//! Idempotency records on MongoDB, expired by a TTL index on `expiresAt`.

use async_trait::async_trait;
use mongodb::bson::{DateTime, doc};

use super::MongoOrders;
use crate::store::{IdempotencyStore, IdempotentResponse, RepoError};

#[async_trait]
impl IdempotencyStore for MongoOrders {
    async fn idempotent_response(
        &self,
        user_id: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<IdempotentResponse>, RepoError> {
        let found = self
            .idempotency
            .find_one(doc! {
                "userId": user_id,
                "key": key,
                "expiresAt": { "$gt": DateTime::from_millis(now_ms) },
            })
            .await?;
        let Some(d) = found else { return Ok(None) };
        let corrupt =
            |field: &str| RepoError::Corrupt(format!("idempotency record without {field}"));
        Ok(Some(IdempotentResponse {
            key: key.to_string(),
            request_hash: d
                .get_str("requestHash")
                .map_err(|_| corrupt("requestHash"))?
                .to_string(),
            status: u16::try_from(d.get_i32("status").map_err(|_| corrupt("status"))?)
                .map_err(|_| corrupt("status"))?,
            body: d.get_str("body").map_err(|_| corrupt("body"))?.to_string(),
            created_at_ms: d.get_i64("createdAt").map_err(|_| corrupt("createdAt"))?,
            expires_at_ms: d
                .get_datetime("expiresAt")
                .map_err(|_| corrupt("expiresAt"))?
                .timestamp_millis(),
        }))
    }

    async fn prune_expired(&self, _now_ms: i64, _limit: usize) -> Result<usize, RepoError> {
        // The TTL index on `expiresAt` removes them; a purchase also clears an expired record
        // of its own key in its transaction, since the TTL monitor runs once a minute.
        Ok(0)
    }
}
