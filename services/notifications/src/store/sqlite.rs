//! The SQLite adapter of [`DeliveryLog`]. Claims are one `UPDATE … RETURNING` over the due
//! records, so they are atomic like every statement of the single connection.

use async_trait::async_trait;
use holdfast_common::docstore::{SqliteDb, StoreError};
use rusqlite::{OptionalExtension, Row, params};

use super::{Delivery, DeliveryLog, DeliveryStatus};

const COLUMNS: &str = "message_id, routing_key, recipient, subject, body, status, attempts, \
                       next_attempt_at, last_error, created_at, sent_at, html, attachments";

pub struct SqliteDeliveries {
    db: SqliteDb,
}

impl SqliteDeliveries {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

fn read(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let status: String = row.get(5)?;
    Ok(Delivery {
        message_id: row.get(0)?,
        routing_key: row.get(1)?,
        recipient: row.get(2)?,
        subject: row.get(3)?,
        body: row.get(4)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                5,
                rusqlite::types::Type::Text,
                format!("unknown delivery status {status:?}").into(),
            )
        })?,
        attempts: row.get(6)?,
        next_attempt_at_ms: row.get(7)?,
        last_error: row.get(8)?,
        created_at_ms: row.get(9)?,
        sent_at_ms: row.get(10)?,
        html: row.get(11)?,
        attachments: row.get::<_, String>(12).and_then(|json| {
            serde_json::from_str(&json).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(12, rusqlite::types::Type::Text, e.into())
            })
        })?,
    })
}

#[async_trait]
impl DeliveryLog for SqliteDeliveries {
    async fn record(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        let d = delivery.clone();
        self.db
            .call(move |c| {
                let inserted = c.execute(
                    &format!(
                        "INSERT INTO deliveries ({COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                         ON CONFLICT (message_id) DO NOTHING"
                    ),
                    params![
                        d.message_id,
                        d.routing_key,
                        d.recipient,
                        d.subject,
                        d.body,
                        d.status.as_str(),
                        d.attempts,
                        d.next_attempt_at_ms,
                        d.last_error,
                        d.created_at_ms,
                        d.sent_at_ms,
                        d.html,
                        serde_json::to_string(&d.attachments).unwrap_or_else(|_| "[]".into()),
                    ],
                )?;
                Ok(inserted == 1)
            })
            .await
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "UPDATE deliveries SET status = 'SENDING', attempts = attempts + 1, \
                     next_attempt_at = ?2 \
                     WHERE message_id IN (SELECT message_id FROM deliveries \
                        WHERE status IN ('PENDING', 'SENDING') AND next_attempt_at <= ?1 \
                        ORDER BY next_attempt_at LIMIT ?3) \
                     RETURNING {COLUMNS}"
                ))?;
                let mut claimed = statement
                    .query_map(params![now_ms, lease_until_ms, limit], read)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                claimed.sort_by_key(|d| d.created_at_ms);
                Ok(claimed)
            })
            .await
    }

    async fn mark_sent(
        &self,
        message_id: &str,
        attempt: u32,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let message_id = message_id.to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE deliveries SET status = 'SENT', sent_at = ?3, last_error = NULL \
                     WHERE message_id = ?1 AND status = 'SENDING' AND attempts = ?2",
                    params![message_id, attempt, now_ms],
                )?;
                Ok(())
            })
            .await
    }

    async fn mark_failed(
        &self,
        message_id: &str,
        attempt: u32,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let (message_id, error) = (message_id.to_string(), error.to_string());
        let status = match retry_at_ms {
            Some(_) => DeliveryStatus::Pending,
            None => DeliveryStatus::Dead,
        };
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE deliveries SET status = ?3, last_error = ?4, \
                     next_attempt_at = COALESCE(?5, next_attempt_at) \
                     WHERE message_id = ?1 AND status = 'SENDING' AND attempts = ?2",
                    params![message_id, attempt, status.as_str(), error, retry_at_ms],
                )?;
                Ok(())
            })
            .await
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        self.db
            .call(|c| {
                Ok(c.query_row(
                    "SELECT MIN(next_attempt_at) FROM deliveries \
                     WHERE status IN ('PENDING', 'SENDING')",
                    [],
                    |row| row.get::<_, Option<i64>>(0),
                )?)
            })
            .await
    }

    async fn prune(&self, finished_before_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .call(move |c| {
                Ok(c.execute(
                    "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries \
                     WHERE status IN ('SENT', 'DEAD') AND created_at < ?1 LIMIT ?2)",
                    params![finished_before_ms, limit],
                )?)
            })
            .await
    }

    async fn dead(
        &self,
        before_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let (before_ms, limit) = (
            before_ms.unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX),
        );
        self.db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM deliveries WHERE status = 'DEAD' AND created_at < ?1 \
                     ORDER BY created_at DESC LIMIT ?2"
                ))?;
                Ok(statement
                    .query_map(params![before_ms, limit], read)?
                    .collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn revive(&self, message_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let message_id = message_id.to_string();
        self.db
            .call(move |c| {
                let changed = c.execute(
                    "UPDATE deliveries SET status = 'PENDING', attempts = 0, next_attempt_at = ?2 \
                     WHERE message_id = ?1 AND status = 'DEAD'",
                    params![message_id, now_ms],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    async fn get(&self, message_id: &str) -> Result<Option<Delivery>, StoreError> {
        let message_id = message_id.to_string();
        self.db
            .call(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {COLUMNS} FROM deliveries WHERE message_id = ?1"),
                    [message_id],
                    read,
                )
                .optional()?)
            })
            .await
    }
}
