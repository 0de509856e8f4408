//! Check-in on SQLite: passages are conditional updates of the ticket's row (SQLite has one
//! writer at a time, so the condition and the write cannot interleave with another gate's);
//! an offline batch is one transaction.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteOrders;
use super::tickets::{TICKET_COLUMNS, read_ticket};
use crate::domain::checkin::{Device, Direction, Passage, PassageOutcome};
use crate::domain::ids::EventId;
use crate::domain::now_millis;
use crate::store::{CheckinStore, RepoError};

/// The ticket's current pass, still valid: the condition every passage starts from.
const CURRENT: &str =
    "ticket_id = ?1 AND event_id = ?2 AND version = ?3 AND secret = ?4 AND status = 'valid'";

/// Records one passage inside `c`'s current transaction (or as a statement of its own).
fn pass_door_on(c: &rusqlite::Connection, p: &Passage) -> rusqlite::Result<PassageOutcome> {
    let now = now_millis();
    let changed = match (p.direction, p.earliest_wins) {
        (Direction::In, false) => c.execute(
            &format!(
                "UPDATE tickets SET entered_at = COALESCE(entered_at, ?5), \
                 entry_gate = COALESCE(entry_gate, ?6), inside = 1, changed_at = ?7 \
                 WHERE {CURRENT} AND inside = 0 AND (entered_at IS NULL OR ?8)"
            ),
            params![
                p.ticket_id,
                p.event_id,
                p.version,
                p.secret,
                p.at_ms,
                p.gate,
                now,
                p.reentry
            ],
        )?,
        (Direction::In, true) => c.execute(
            &format!(
                "UPDATE tickets SET entered_at = ?5, entry_gate = ?6, inside = 1, changed_at = ?7 \
                 WHERE {CURRENT} AND (entered_at IS NULL OR entered_at > ?5)"
            ),
            params![
                p.ticket_id,
                p.event_id,
                p.version,
                p.secret,
                p.at_ms,
                p.gate,
                now
            ],
        )?,
        (Direction::Out, _) => c.execute(
            &format!(
                "UPDATE tickets SET inside = 0, changed_at = ?5 WHERE {CURRENT} AND inside = 1"
            ),
            params![p.ticket_id, p.event_id, p.version, p.secret, now],
        )?,
    };
    let ticket = c
        .query_row(
            &format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id = ?1"),
            [&p.ticket_id],
            read_ticket,
        )
        .optional()?;
    Ok(PassageOutcome::after(p, changed == 1, ticket.as_ref()))
}

fn read_device(row: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        device_id: row.get(0)?,
        event_id: row.get(1)?,
        name: row.get(2)?,
        secret_hash: row.get(3)?,
        created_by: row.get(4)?,
        created_at_ms: row.get(5)?,
        revoked: row.get(6)?,
    })
}

const DEVICE_COLUMNS: &str =
    "device_id, event_id, name, secret_hash, created_by, created_at, revoked";

#[async_trait]
impl CheckinStore for SqliteOrders {
    async fn pass_door(&self, passage: &Passage) -> Result<PassageOutcome, RepoError> {
        let passage = passage.clone();
        Ok(self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let outcome = pass_door_on(&tx, &passage)?;
                tx.commit()?;
                Ok(outcome)
            })
            .await?)
    }

    async fn pass_door_batch(
        &self,
        scanner: &str,
        passages: &[(String, Passage)],
        expires_at_ms: i64,
    ) -> Result<Vec<PassageOutcome>, RepoError> {
        let (scanner, passages) = (scanner.to_string(), passages.to_vec());
        Ok(self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut outcomes = Vec::with_capacity(passages.len());
                for (nonce, passage) in &passages {
                    let seen: Option<String> = tx
                        .prepare_cached(
                            "SELECT outcome FROM scan_nonces WHERE scanner = ?1 AND nonce = ?2",
                        )?
                        .query_row(params![scanner, nonce], |r| r.get(0))
                        .optional()?;
                    if let Some(seen) = seen {
                        outcomes.push(serde_json::from_str(&seen).map_err(|e| {
                            holdfast_common::docstore::StoreError::Corrupt(e.to_string())
                        })?);
                        continue;
                    }
                    let outcome = pass_door_on(&tx, passage)?;
                    tx.prepare_cached(
                        "INSERT INTO scan_nonces (scanner, nonce, outcome, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        scanner,
                        nonce,
                        serde_json::to_string(&outcome).unwrap_or_default(),
                        expires_at_ms
                    ])?;
                    outcomes.push(outcome);
                }
                tx.commit()?;
                Ok(outcomes)
            })
            .await?)
    }

    async fn prune_scan_nonces(&self, now_ms: i64, limit: usize) -> Result<usize, RepoError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .db
            .call(move |c| {
                Ok(c.execute(
                    "DELETE FROM scan_nonces WHERE (scanner, nonce) IN (SELECT scanner, nonce \
                     FROM scan_nonces WHERE expires_at <= ?1 LIMIT ?2)",
                    params![now_ms, limit],
                )?)
            })
            .await?)
    }

    async fn add_device(&self, device: &Device, max_per_event: usize) -> Result<bool, RepoError> {
        let device = device.clone();
        let max = i64::try_from(max_per_event).unwrap_or(i64::MAX);
        Ok(self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let active: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM devices WHERE event_id = ?1 AND revoked = 0",
                    [&device.event_id],
                    |r| r.get(0),
                )?;
                if active >= max {
                    return Ok(false);
                }
                tx.execute(
                    &format!(
                        "INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    ),
                    params![
                        device.device_id,
                        device.event_id,
                        device.name,
                        device.secret_hash,
                        device.created_by,
                        device.created_at_ms,
                        device.revoked
                    ],
                )?;
                tx.commit()?;
                Ok(true)
            })
            .await?)
    }

    async fn device(&self, device_id: &str) -> Result<Option<Device>, RepoError> {
        let device_id = device_id.to_string();
        Ok(self
            .db
            .call(move |c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = ?1"
                ))?
                .query_row([device_id], read_device)
                .optional()?)
            })
            .await?)
    }

    async fn devices_of(&self, event_id: &EventId) -> Result<Vec<Device>, RepoError> {
        let event_id = event_id.clone();
        Ok(self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices WHERE event_id = ?1 ORDER BY created_at, device_id"
                ))?;
                let devices = statement
                    .query_map([event_id], read_device)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(devices)
            })
            .await?)
    }

    async fn revoke_device(&self, event_id: &EventId, device_id: &str) -> Result<bool, RepoError> {
        let (event_id, device_id) = (event_id.clone(), device_id.to_string());
        Ok(self
            .db
            .call(move |c| {
                Ok(c.execute(
                    "UPDATE devices SET revoked = 1 WHERE event_id = ?1 AND device_id = ?2 AND revoked = 0",
                    params![event_id, device_id],
                )? == 1)
            })
            .await?)
    }
}
