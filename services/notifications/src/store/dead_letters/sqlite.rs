//! The SQLite adapter of [`DeadLetterLog`]: one `dead_letters` row per record.

use async_trait::async_trait;
use holdfast_common::bus::DeadLetter;
use holdfast_common::docstore::{SqliteDb, StoreError};
use rusqlite::{OptionalExtension, Row, params};

use super::{After, DeadLetterLog, DeadLetterRecord, DeadLetterStatus};

const COLUMNS: &str =
    "id, queue, routing_key, reason, body, message_id, status, deaths, dead_at, redriven_at";

pub struct SqliteDeadLetters {
    db: SqliteDb,
}

impl SqliteDeadLetters {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

fn read(row: &Row<'_>) -> rusqlite::Result<DeadLetterRecord> {
    let status: String = row.get(6)?;
    Ok(DeadLetterRecord {
        id: row.get(0)?,
        letter: DeadLetter {
            queue: row.get(1)?,
            routing_key: row.get(2)?,
            reason: row.get(3)?,
            body: row.get(4)?,
            message_id: row.get(5)?,
        },
        status: DeadLetterStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                6,
                rusqlite::types::Type::Text,
                format!("unknown dead letter status {status:?}").into(),
            )
        })?,
        deaths: row.get(7)?,
        dead_at_ms: row.get(8)?,
        redriven_at_ms: row.get(9)?,
    })
}

#[async_trait]
impl DeadLetterLog for SqliteDeadLetters {
    async fn keep(&self, record: &DeadLetterRecord) -> Result<(), StoreError> {
        let r = record.clone();
        self.db
            .call(move |c| {
                c.execute(
                    &format!(
                        "INSERT INTO dead_letters ({COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'WAITING', 1, ?7, NULL) \
                         ON CONFLICT (id) DO UPDATE SET status = 'WAITING', \
                           reason = excluded.reason, body = excluded.body, \
                           deaths = deaths + 1, dead_at = excluded.dead_at, redriven_at = NULL \
                         WHERE status = 'REDRIVEN'"
                    ),
                    params![
                        r.id,
                        r.letter.queue,
                        r.letter.routing_key,
                        r.letter.reason,
                        r.letter.body,
                        r.letter.message_id,
                        r.dead_at_ms,
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn list(
        &self,
        status: Option<DeadLetterStatus>,
        after: Option<&After>,
        limit: usize,
    ) -> Result<Vec<DeadLetterRecord>, StoreError> {
        let status = status.map(DeadLetterStatus::as_str);
        // No record dies at i64::MAX: the first page starts below it.
        let (after_ms, after_id) = match after {
            Some(after) => (after.dead_at_ms, after.id.clone()),
            None => (i64::MAX, String::new()),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM dead_letters \
                     WHERE (?1 IS NULL OR status = ?1) \
                       AND (dead_at < ?2 OR (dead_at = ?2 AND id < ?3)) \
                     ORDER BY dead_at DESC, id DESC LIMIT ?4"
                ))?;
                Ok(statement
                    .query_map(params![status, after_ms, after_id, limit], read)?
                    .collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<DeadLetterRecord>, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {COLUMNS} FROM dead_letters WHERE id = ?1"),
                    [id],
                    read,
                )
                .optional()?)
            })
            .await
    }

    async fn mark_redriven(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                let changed = c.execute(
                    "UPDATE dead_letters SET status = 'REDRIVEN', redriven_at = ?2 \
                     WHERE id = ?1 AND status = 'WAITING'",
                    params![id, now_ms],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    async fn waiting(&self) -> Result<u64, StoreError> {
        self.db
            .call(|c| {
                let count: i64 = c.query_row(
                    "SELECT COUNT(*) FROM dead_letters WHERE status = 'WAITING'",
                    [],
                    |row| row.get(0),
                )?;
                Ok(u64::try_from(count).unwrap_or(0))
            })
            .await
    }
}
