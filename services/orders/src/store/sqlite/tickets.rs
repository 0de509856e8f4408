//! Tickets on SQLite: written and revoked inside the purchase's and the cancellation's
//! transactions (see `orders.rs`), read here.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteOrders;
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::order::Order;
use crate::domain::ticket::{Ticket, TicketStatus};
use crate::store::{ChangeCursor, RepoError, TicketStore};

pub(super) const TICKET_COLUMNS: &str = "ticket_id, event_id, seat_id, order_id, holder_id, status, version, secret, entered_at, entry_gate, inside, changed_at";

/// Writes the new order's tickets in the purchase's transaction `tx`.
pub(super) fn insert_tickets(
    tx: &rusqlite::Transaction<'_>,
    order: &Order,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO tickets ({TICKET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?;
    for t in Ticket::issue(order) {
        insert.execute(params![
            t.ticket_id,
            t.event_id,
            t.seat_id,
            t.order_id,
            t.holder_id,
            t.status.as_str(),
            t.version,
            t.secret,
            t.entered_at_ms,
            t.entry_gate,
            t.inside,
            t.changed_at_ms,
        ])?;
    }
    Ok(())
}

/// Revokes the tickets of the order's `seats` in the cancellation's transaction `tx`.
pub(super) fn revoke_tickets(
    tx: &rusqlite::Transaction<'_>,
    order_id: &OrderId,
    seats: &[SeatId],
    now_ms: i64,
) -> rusqlite::Result<()> {
    let mut revoke = tx.prepare_cached(
        "UPDATE tickets SET status = 'cancelled', inside = 0, changed_at = ?3 \
         WHERE order_id = ?1 AND seat_id = ?2 AND status = 'valid'",
    )?;
    for seat in seats {
        revoke.execute(params![order_id, seat, now_ms])?;
    }
    Ok(())
}

pub(super) fn read_ticket(row: &Row<'_>) -> rusqlite::Result<Ticket> {
    Ok(Ticket {
        ticket_id: row.get(0)?,
        event_id: row.get(1)?,
        seat_id: row.get(2)?,
        order_id: row.get(3)?,
        holder_id: row.get(4)?,
        status: row.get::<_, String>(5).and_then(|s| {
            TicketStatus::parse(&s).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    5,
                    rusqlite::types::Type::Text,
                    format!("unknown ticket status {s:?}").into(),
                )
            })
        })?,
        version: row.get(6)?,
        secret: row.get(7)?,
        entered_at_ms: row.get(8)?,
        entry_gate: row.get(9)?,
        inside: row.get(10)?,
        changed_at_ms: row.get(11)?,
    })
}

#[async_trait]
impl TicketStore for SqliteOrders {
    async fn tickets_of_order(&self, order_id: &OrderId) -> Result<Vec<Ticket>, RepoError> {
        let order_id = order_id.clone();
        Ok(self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {TICKET_COLUMNS} FROM tickets WHERE order_id = ?1 ORDER BY rowid"
                ))?;
                let tickets = statement
                    .query_map([order_id], read_ticket)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(tickets)
            })
            .await?)
    }

    async fn ticket(&self, ticket_id: &str) -> Result<Option<Ticket>, RepoError> {
        let ticket_id = ticket_id.to_string();
        Ok(self
            .db
            .call(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id = ?1"),
                    [ticket_id],
                    read_ticket,
                )
                .optional()?)
            })
            .await?)
    }

    async fn tickets_changed(
        &self,
        event_id: &EventId,
        after: &ChangeCursor,
        limit: usize,
    ) -> Result<Vec<Ticket>, RepoError> {
        let (event_id, after) = (event_id.clone(), after.clone());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {TICKET_COLUMNS} FROM tickets WHERE event_id = ?1 \
                     AND (changed_at, ticket_id) > (?2, ?3) ORDER BY changed_at, ticket_id LIMIT ?4"
                ))?;
                let tickets = statement
                    .query_map(
                        params![event_id, after.changed_at_ms, after.ticket_id, limit],
                        read_ticket,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(tickets)
            })
            .await?)
    }
}
