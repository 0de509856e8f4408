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

    async fn claim_outbox(
        &self,
        limit: u32,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Vec<OutboxMessage>, RepoError> {
        Ok(self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(
                    "UPDATE outbox SET claimed_until = ?2 WHERE id IN (SELECT id FROM outbox \
                     WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?1) \
                     ORDER BY created_at LIMIT ?3) \
                     RETURNING id, routing_key, payload, created_at",
                )?;
                let mut rows = statement
                    .query_map(params![now_ms, lease_until_ms, limit], |r| {
                        Ok((
                            r.get::<_, i64>(3)?,
                            OutboxMessage {
                                id: r.get(0)?,
                                routing_key: r.get(1)?,
                                payload: r.get(2)?,
                            },
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.sort_by_key(|(created_at, _)| *created_at);
                Ok(rows.into_iter().map(|(_, message)| message).collect())
            })
            .await?)
    }

    async fn release_claims(&self, ids: &[String]) -> Result<(), RepoError> {
        let ids = ids.to_vec();
        self.db
            .call(move |c| {
                let mut statement = c.prepare_cached(
                    "UPDATE outbox SET claimed_until = NULL WHERE id = ?1 AND sent_at IS NULL",
                )?;
                for id in &ids {
                    statement.execute([id])?;
                }
                Ok(())
            })
            .await?;
        Ok(())
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
