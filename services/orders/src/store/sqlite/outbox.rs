//! The outbox on SQLite.

use async_trait::async_trait;
use rusqlite::params;

use super::SqliteOrders;
use crate::domain::now_millis;
use crate::store::{OutboxMessage, OutboxStore, RepoError};

#[async_trait]
impl OutboxStore for SqliteOrders {
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, RepoError> {
        Ok(self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(
                    "SELECT id, routing_key, payload FROM outbox WHERE sent_at IS NULL ORDER BY created_at LIMIT ?1",
                )?;
                let rows = statement
                    .query_map([limit], |r| {
                        Ok(OutboxMessage {
                            id: r.get(0)?,
                            routing_key: r.get(1)?,
                            payload: r.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn mark_sent(&self, id: &str) -> Result<(), RepoError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE outbox SET sent_at = ?2 WHERE id = ?1",
                    params![id, now_millis()],
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn prune_published(&self, sent_before_ms: i64, limit: usize) -> Result<usize, RepoError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .call(move |c| {
                Ok(c.execute(
                    "DELETE FROM outbox WHERE rowid IN \
                     (SELECT rowid FROM outbox WHERE sent_at < ?1 LIMIT ?2)",
                    params![sent_before_ms, limit],
                )?)
            })
            .await
    }
}
