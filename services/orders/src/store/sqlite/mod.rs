//! The SQLite adapter of the order store, a file per capability. Every write runs in a
//! `BEGIN IMMEDIATE` transaction, so it holds the write lock from its first statement.

mod checkin;
mod idempotency;
mod orders;
mod outbox;
mod rows;
mod tickets;
mod waitlist;

use holdfast_common::docstore::SqliteDb;
use rusqlite::{ErrorCode, params};

use super::OutboxMessage;
use crate::domain::now_millis;

pub struct SqliteOrders {
    db: SqliteDb,
}

impl SqliteOrders {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

fn is_constraint(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation)
}

/// Writes `message` to the outbox in the transaction `tx` of the change it announces.
fn insert_outbox(tx: &rusqlite::Transaction<'_>, message: &OutboxMessage) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO outbox (id, routing_key, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            message.id,
            message.routing_key,
            message.payload,
            now_millis()
        ],
    )?;
    Ok(())
}
