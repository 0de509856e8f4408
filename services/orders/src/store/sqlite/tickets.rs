//! Tickets on SQLite: written and revoked inside the purchase's and the cancellation's
//! transactions (see `orders.rs`), read here.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteOrders, insert_outbox};
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::ticket::{Ticket, TicketPolicy, TicketStatus, TicketTransfer};
use crate::store::{ChangeCursor, OutboxMessage, RepoError, TicketStore};

pub(super) const TICKET_COLUMNS: &str = "ticket_id, event_id, seat_id, order_id, holder_id, holder_email, status, version, secret, transfers, entered_at, entry_gate, inside, changed_at";

/// Writes the new order's tickets in the purchase's transaction `tx`.
pub(super) fn insert_tickets(
    tx: &rusqlite::Transaction<'_>,
    tickets: &[Ticket],
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO tickets ({TICKET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?;
    for t in tickets {
        insert.execute(params![
            t.ticket_id,
            t.event_id,
            t.seat_id,
            t.order_id,
            t.holder_id,
            t.holder_email,
            t.status.as_str(),
            t.version,
            t.secret,
            t.transfers,
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
        holder_email: row.get(5)?,
        status: row.get::<_, String>(6).and_then(|s| {
            TicketStatus::parse(&s).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    6,
                    rusqlite::types::Type::Text,
                    format!("unknown ticket status {s:?}").into(),
                )
            })
        })?,
        version: row.get(7)?,
        secret: row.get(8)?,
        transfers: row.get(9)?,
        entered_at_ms: row.get(10)?,
        entry_gate: row.get(11)?,
        inside: row.get(12)?,
        changed_at_ms: row.get(13)?,
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

    async fn tickets_of_holder(&self, user_id: &str) -> Result<Vec<Ticket>, RepoError> {
        let user_id = user_id.to_string();
        Ok(self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {TICKET_COLUMNS} FROM tickets WHERE holder_id = ?1 ORDER BY rowid"
                ))?;
                let tickets = statement
                    .query_map([user_id], read_ticket)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(tickets)
            })
            .await?)
    }

    async fn claim_ticket(
        &self,
        claim_hash: &str,
        email: &str,
        user_id: &str,
    ) -> Result<Option<String>, RepoError> {
        let (claim_hash, email, user_id) = (
            claim_hash.to_string(),
            email.to_lowercase(),
            user_id.to_string(),
        );
        Ok(self
            .db
            .call(move |c| {
                Ok(c.query_row(
                    "UPDATE tickets SET holder_id = ?3, claim_hash = NULL, changed_at = ?4 \
                     WHERE claim_hash = ?1 AND holder_id IS NULL AND holder_email = ?2 \
                     RETURNING ticket_id",
                    params![claim_hash, email, user_id, crate::domain::now_millis()],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await?)
    }

    async fn transfer(
        &self,
        transfer: &TicketTransfer,
        announce: &OutboxMessage,
    ) -> Result<bool, RepoError> {
        let (t, announce) = (transfer.clone(), announce.clone());
        Ok(self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let reissued = tx.execute(
                    "UPDATE tickets SET holder_id = NULL, holder_email = ?3, version = version + 1, \
                     secret = ?4, transfers = transfers + 1, changed_at = ?5, claim_hash = ?7 \
                     WHERE ticket_id = ?1 AND version = ?2 AND status = 'valid' \
                     AND entered_at IS NULL AND transfers < ?6",
                    params![
                        t.ticket_id,
                        t.from_version,
                        t.to_email,
                        t.new_secret,
                        t.at_ms,
                        t.max_transfers,
                        t.claim_hash
                    ],
                )?;
                if reissued == 0 {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO transfers (transfer_id, ticket_id, event_id, from_user, from_email, \
                     to_email, version, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        t.transfer_id,
                        t.ticket_id,
                        t.event_id,
                        t.from_user,
                        t.from_email,
                        t.to_email,
                        t.from_version + 1,
                        t.at_ms
                    ],
                )?;
                insert_outbox(&tx, &announce)?;
                tx.commit()?;
                Ok(true)
            })
            .await?)
    }

    async fn backfill_tickets(&self) -> Result<usize, RepoError> {
        // The migration that made the table did this for the orders of its day; this is the
        // same, for any order still without tickets, changed now (so scanners syncing by
        // delta get them).
        Ok(self
            .db
            .call(|c| {
                Ok(c.execute(
                    "WITH live AS MATERIALIZED ( \
                         SELECT lower(hex(randomblob(16))) AS h, o.event_id, s.value AS seat_id, \
                                o.order_id, o.user_id, lower(o.email) AS email, o.created_at \
                         FROM orders o, json_each(o.seat_ids) s \
                         WHERE s.value NOT IN (SELECT value FROM json_each(o.cancelled_seat_ids)) \
                         AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.order_id = o.order_id)) \
                     INSERT INTO tickets (ticket_id, event_id, seat_id, order_id, holder_id, \
                                          holder_email, status, version, secret, changed_at) \
                     SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) \
                            || '-a' || substr(h, 18, 3) || '-' || substr(h, 21, 12), \
                            event_id, seat_id, order_id, user_id, email, 'valid', 1, \
                            lower(hex(randomblob(6))), ?1 \
                     FROM live",
                    [crate::domain::now_millis()],
                )?)
            })
            .await?)
    }

    async fn ticket_policy(&self, event_id: &EventId) -> Result<TicketPolicy, RepoError> {
        let event_id = event_id.clone();
        Ok(self
            .db
            .call(move |c| {
                let stored = c
                    .query_row(
                        "SELECT reentry, transfers, transfer_cutoff, max_transfers \
                         FROM ticket_policies WHERE event_id = ?1",
                        [event_id],
                        |r| {
                            Ok(TicketPolicy {
                                reentry: r.get(0)?,
                                transfers_enabled: r.get(1)?,
                                transfer_cutoff_hours: r.get(2)?,
                                max_transfers: r.get(3)?,
                            })
                        },
                    )
                    .optional()?;
                Ok(stored.unwrap_or_default())
            })
            .await?)
    }

    async fn set_ticket_policy(
        &self,
        event_id: &EventId,
        policy: &TicketPolicy,
    ) -> Result<(), RepoError> {
        let (event_id, p) = (event_id.clone(), *policy);
        Ok(self
            .db
            .call(move |c| {
                c.execute(
                    "INSERT INTO ticket_policies (event_id, reentry, transfers, transfer_cutoff, max_transfers) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (event_id) DO UPDATE SET \
                     reentry = excluded.reentry, transfers = excluded.transfers, \
                     transfer_cutoff = excluded.transfer_cutoff, max_transfers = excluded.max_transfers",
                    params![event_id, p.reentry, p.transfers_enabled, p.transfer_cutoff_hours, p.max_transfers],
                )?;
                Ok(())
            })
            .await?)
    }
}
