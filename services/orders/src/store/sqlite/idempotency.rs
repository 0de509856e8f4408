//! Idempotency records on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::SqliteOrders;
use crate::store::{IdempotencyStore, IdempotentResponse, RepoError};

#[async_trait]
impl IdempotencyStore for SqliteOrders {
    async fn idempotent_response(
        &self,
        user_id: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<IdempotentResponse>, RepoError> {
        let (user_id, key) = (user_id.to_string(), key.to_string());
        Ok(self
            .db
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT key, request_hash, status, body, created_at, expires_at FROM idempotency \
                     WHERE user_id = ?1 AND key = ?2 AND expires_at > ?3",
                    params![user_id, key, now_ms],
                    |r| {
                        Ok(IdempotentResponse {
                            key: r.get(0)?,
                            request_hash: r.get(1)?,
                            status: r.get(2)?,
                            body: r.get(3)?,
                            created_at_ms: r.get(4)?,
                            expires_at_ms: r.get(5)?,
                        })
                    },
                )
                .optional()?)
            })
            .await?)
    }

    async fn prune_expired(&self, now_ms: i64, limit: usize) -> Result<usize, RepoError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .call(move |c| {
                Ok(c.execute(
                    "DELETE FROM idempotency WHERE rowid IN \
                     (SELECT rowid FROM idempotency WHERE expires_at <= ?1 LIMIT ?2)",
                    params![now_ms, limit],
                )?)
            })
            .await
    }
}
