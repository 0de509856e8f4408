//! The SQLite adapter of [`OrderRepository`]; a purchase runs in a `BEGIN IMMEDIATE`
//! transaction, so it holds the write lock from its first statement.

use async_trait::async_trait;
use holdfast_common::docstore::{SqliteDb, StoreError};
use rusqlite::{ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    CancelOutcome, IdempotentResponse, NewCancellation, NewPurchase, Offer, Order, OrderRepository,
    OrderStatus, OutboxMessage, Place, PurchaseOutcome, Refund, RepoError, SoldSeats,
    WaitlistEntry, WaitlistSummary, line,
};
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

const ORDER_COLUMNS: &str = "order_id, user_id, event_id, seat_ids, amount_minor, currency, payment_intent_id, status, created_at, email";
/// What a read of an order selects: the columns a purchase writes, then those cancellations
/// change.
const ORDER_READ_COLUMNS: &str = "order_id, user_id, event_id, seat_ids, amount_minor, currency, payment_intent_id, status, created_at, email, cancelled_seat_ids, refunded_minor, revision, cancelled_at";

/// An order as read, with its JSON seat lists and cancellation times still to decode (see
/// [`with_seats`]).
type OrderRow = (Order, String, String, String);

fn read_order(row: &Row<'_>) -> rusqlite::Result<OrderRow> {
    Ok((
        Order {
            order_id: row.get(0)?,
            user_id: row.get(1)?,
            event_id: row.get(2)?,
            seat_ids: Vec::new(),
            amount_minor: row.get(4)?,
            currency: row.get(5)?,
            payment_intent_id: row.get(6)?,
            status: row.get::<_, String>(7).and_then(|s| {
                OrderStatus::parse(&s).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        7,
                        rusqlite::types::Type::Text,
                        format!("unknown order status {s:?}").into(),
                    )
                })
            })?,
            created_at_ms: row.get(8)?,
            email: row.get(9)?,
            cancelled_seat_ids: Vec::new(),
            cancelled_at_ms: Vec::new(),
            refunded_minor: row.get(11)?,
            revision: row.get(12)?,
        },
        row.get(3)?,
        row.get(10)?,
        row.get(13)?,
    ))
}

fn with_seats((mut order, seats, cancelled, cancelled_at): OrderRow) -> Result<Order, RepoError> {
    order.seat_ids = seat_list(&seats, &order.order_id)?;
    order.cancelled_seat_ids = seat_list(&cancelled, &order.order_id)?;
    // A time the migration could not find (no refund named the seat) reads as unknown.
    let times: Vec<Option<i64>> = serde_json::from_str(&cancelled_at).map_err(|e| {
        RepoError::Corrupt(format!("cancellation times of {}: {e}", order.order_id))
    })?;
    order.cancelled_at_ms = times.into_iter().map_while(|t| t).collect();
    Ok(order)
}

fn seat_list(json: &str, owner: &str) -> Result<Vec<String>, RepoError> {
    serde_json::from_str(json).map_err(|e| RepoError::Corrupt(format!("seats of {owner}: {e}")))
}

fn seats_json(seats: &[String]) -> String {
    serde_json::to_string(seats).unwrap_or_else(|_| "[]".into())
}

const REFUND_COLUMNS: &str = "refund_id, order_id, event_id, user_id, payment_intent_id, seat_ids, amount_minor, currency, cancelled_by, created_at";

fn read_refund(row: &Row<'_>) -> rusqlite::Result<(Refund, String)> {
    Ok((
        Refund {
            refund_id: row.get(0)?,
            order_id: row.get(1)?,
            event_id: row.get(2)?,
            user_id: row.get(3)?,
            payment_intent_id: row.get(4)?,
            seat_ids: Vec::new(),
            amount_minor: row.get(6)?,
            currency: row.get(7)?,
            cancelled_by: row.get(8)?,
            created_at_ms: row.get(9)?,
        },
        row.get(5)?,
    ))
}

fn refund_with_seats((mut refund, seats): (Refund, String)) -> Result<Refund, RepoError> {
    refund.seat_ids = seat_list(&seats, &refund.refund_id)?;
    Ok(refund)
}

const WAITLIST_COLUMNS: &str =
    "event_id, user_id, seats, joined_at, offer_hold_id, offer_until, email, seq";

fn read_entry(row: &Row<'_>) -> rusqlite::Result<WaitlistEntry> {
    let hold_id: Option<String> = row.get(4)?;
    let until: Option<i64> = row.get(5)?;
    Ok(WaitlistEntry {
        event_id: row.get(0)?,
        user_id: row.get(1)?,
        seq: u64::try_from(row.get::<_, i64>(7)?).unwrap_or(0),
        seats: usize::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        joined_at_ms: row.get(3)?,
        email: row.get(6)?,
        offer: hold_id
            .zip(until)
            .map(|(hold_id, until_ms)| Offer { hold_id, until_ms }),
    })
}

fn cancel_blocking(
    c: &mut rusqlite::Connection,
    p: &NewCancellation,
) -> Result<CancelOutcome, StoreError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let order = &p.order;
    let updated = tx.execute(
        "UPDATE orders SET status = ?2, cancelled_seat_ids = ?3, refunded_minor = ?4, revision = ?5, \
         cancelled_at = ?7 WHERE order_id = ?1 AND revision = ?6",
        params![
            order.order_id,
            order.status.as_str(),
            seats_json(&order.cancelled_seat_ids),
            order.refunded_minor,
            order.revision,
            order.revision - 1,
            serde_json::to_string(&order.cancelled_at_ms).unwrap_or_else(|_| "[]".into()),
        ],
    )?;
    if updated == 0 {
        return Ok(CancelOutcome::Stale);
    }
    {
        let mut release = tx.prepare(
            "DELETE FROM sold_seats WHERE event_id = ?1 AND seat_id = ?2 AND order_id = ?3",
        )?;
        for seat in &p.released {
            release.execute(params![order.event_id, seat, order.order_id])?;
        }
    }
    let r = &p.refund;
    tx.execute(
        &format!(
            "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            r.refund_id,
            r.order_id,
            r.event_id,
            r.user_id,
            r.payment_intent_id,
            seats_json(&r.seat_ids),
            r.amount_minor,
            r.currency,
            r.cancelled_by,
            r.created_at_ms,
        ],
    )?;
    insert_outbox(&tx, &p.outbox)?;
    tx.commit()?;
    Ok(CancelOutcome::Committed)
}

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

fn purchase_blocking(
    c: &mut rusqlite::Connection,
    p: &NewPurchase,
) -> Result<PurchaseOutcome, StoreError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let order = &p.order;
    let mut seat_taken = false;
    {
        let mut sold =
            tx.prepare("INSERT INTO sold_seats (event_id, seat_id, order_id) VALUES (?1, ?2, ?3)")?;
        for seat in &order.seat_ids {
            match sold.execute(params![order.event_id, seat, order.order_id]) {
                Ok(_) => {}
                Err(e) if is_constraint(&e) => {
                    seat_taken = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if seat_taken {
        tx.rollback()?;
        // Outside the rolled-back transaction, only seats sold by others remain.
        let mut existing =
            c.prepare("SELECT 1 FROM sold_seats WHERE event_id = ?1 AND seat_id = ?2")?;
        let mut taken = Vec::new();
        for seat in &order.seat_ids {
            if existing.exists(params![order.event_id, seat])? {
                taken.push(seat.clone());
            }
        }
        return Ok(PurchaseOutcome::SeatsTaken(taken));
    }
    let seats = seats_json(&order.seat_ids);
    let inserted = tx.execute(
        &format!(
            "INSERT INTO orders ({ORDER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            order.order_id,
            order.user_id,
            order.event_id,
            seats,
            order.amount_minor,
            order.currency,
            order.payment_intent_id,
            order.status.as_str(),
            order.created_at_ms,
            order.email,
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_constraint(&e) => return Ok(PurchaseOutcome::IntentUsed),
        Err(e) => return Err(e.into()),
    }
    if let Some(idem) = &p.idempotency {
        tx.execute(
            "DELETE FROM idempotency WHERE user_id = ?1 AND key = ?2 AND expires_at <= ?3",
            params![order.user_id, idem.key, now_millis()],
        )?;
        let recorded = tx.execute(
            "INSERT INTO idempotency (user_id, key, request_hash, status, body, order_id, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                order.user_id,
                idem.key,
                idem.request_hash,
                idem.status,
                idem.body,
                order.order_id,
                idem.created_at_ms,
                idem.expires_at_ms,
            ],
        );
        match recorded {
            Ok(_) => {}
            Err(e) if is_constraint(&e) => return Ok(PurchaseOutcome::KeyUsed),
            Err(e) => return Err(e.into()),
        }
    }
    insert_outbox(&tx, &p.outbox)?;
    tx.commit()?;
    Ok(PurchaseOutcome::Committed)
}

#[async_trait]
impl OrderRepository for SqliteOrders {
    async fn sold_seats(&self, event_id: &str) -> Result<SoldSeats, RepoError> {
        let event_id = event_id.to_string();
        Ok(self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(
                    "SELECT seat_id, order_id FROM sold_seats WHERE event_id = ?1",
                )?;
                let seats = statement
                    .query_map([event_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<SoldSeats>>()?;
                Ok(seats)
            })
            .await?)
    }

    async fn purchase(&self, purchase: &NewPurchase) -> Result<PurchaseOutcome, RepoError> {
        let purchase = purchase.clone();
        Ok(self
            .db
            .call(move |c| purchase_blocking(c, &purchase))
            .await?)
    }

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

    async fn orders_of(&self, user_id: &str) -> Result<Vec<Order>, RepoError> {
        let user_id = user_id.to_string();
        let rows = self
            .db
            .call(move |c| {
                let mut statement = c.prepare(&format!(
                    "SELECT {ORDER_READ_COLUMNS} FROM orders WHERE user_id = ?1 ORDER BY created_at DESC, order_id DESC"
                ))?;
                let rows = statement.query_map([user_id], read_order)?.collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(with_seats).collect()
    }

    async fn order(&self, order_id: &str) -> Result<Option<Order>, RepoError> {
        let order_id = order_id.to_string();
        let row = self
            .db
            .call(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {ORDER_READ_COLUMNS} FROM orders WHERE order_id = ?1"),
                    [order_id],
                    read_order,
                )
                .optional()?)
            })
            .await?;
        row.map(with_seats).transpose()
    }

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

    async fn prune(
        &self,
        sent_before_ms: i64,
        now_ms: i64,
        limit: usize,
    ) -> Result<usize, RepoError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .call(move |c| {
                let sent = c.execute(
                    "DELETE FROM outbox WHERE rowid IN \
                     (SELECT rowid FROM outbox WHERE sent_at < ?1 LIMIT ?2)",
                    params![sent_before_ms, limit],
                )?;
                let left = limit - i64::try_from(sent).unwrap_or(limit);
                let expired = c.execute(
                    "DELETE FROM idempotency WHERE rowid IN \
                     (SELECT rowid FROM idempotency WHERE expires_at <= ?1 LIMIT ?2)",
                    params![now_ms, left],
                )?;
                Ok(sent + expired)
            })
            .await
    }

    async fn cancel(&self, cancellation: &NewCancellation) -> Result<CancelOutcome, RepoError> {
        let cancellation = cancellation.clone();
        Ok(self
            .db
            .call(move |c| cancel_blocking(c, &cancellation))
            .await?)
    }

    async fn refunds_of(&self, order_id: &str) -> Result<Vec<Refund>, RepoError> {
        self.refunds_where("order_id", order_id).await
    }

    async fn orders_of_event(&self, event_id: &str) -> Result<Vec<Order>, RepoError> {
        let event_id = event_id.to_string();
        let rows = self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {ORDER_READ_COLUMNS} FROM orders WHERE event_id = ?1 ORDER BY created_at"
                ))?;
                let rows = statement
                    .query_map([event_id], read_order)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(with_seats).collect()
    }

    async fn refunds_of_event(&self, event_id: &str) -> Result<Vec<Refund>, RepoError> {
        self.refunds_where("event_id", event_id).await
    }

    async fn join_waitlist(&self, entry: &WaitlistEntry) -> Result<bool, RepoError> {
        let entry = entry.clone();
        Ok(self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let on_it = tx
                    .query_row(
                        "SELECT 1 FROM waitlist WHERE event_id = ?1 AND user_id = ?2",
                        params![entry.event_id, entry.user_id],
                        |_| Ok(()),
                    )
                    .optional()?;
                if on_it.is_some() {
                    return Ok(false);
                }
                let seats = i64::try_from(entry.seats).unwrap_or(i64::MAX);
                let seq: i64 = tx.query_row(
                    "INSERT INTO waitlist_lines (event_id, next_seq, entries, seats) VALUES (?1, 2, 1, ?2) \
                     ON CONFLICT (event_id) DO UPDATE SET next_seq = next_seq + 1, \
                     entries = entries + 1, seats = seats + excluded.seats RETURNING next_seq - 1",
                    params![entry.event_id, seats],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO waitlist (event_id, user_id, seats, joined_at, email, seq) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        entry.event_id,
                        entry.user_id,
                        seats,
                        entry.joined_at_ms,
                        entry.email,
                        seq
                    ],
                )?;
                for (level, block) in line::blocks_of(u64::try_from(seq).unwrap_or(0)) {
                    tx.execute(
                        "INSERT INTO waitlist_blocks (event_id, level, block, entries) VALUES (?1, ?2, ?3, 1) \
                         ON CONFLICT (event_id, level, block) DO UPDATE SET entries = entries + 1",
                        params![entry.event_id, level, block_number(block)],
                    )?;
                }
                tx.commit()?;
                Ok(true)
            })
            .await?)
    }

    async fn waitlist_place(
        &self,
        event_id: &str,
        user_id: &str,
    ) -> Result<Option<Place>, RepoError> {
        let (event_id, user_id) = (event_id.to_string(), user_id.to_string());
        Ok(self
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                let Some(entry) = tx
                    .query_row(
                        &format!(
                            "SELECT {WAITLIST_COLUMNS} FROM waitlist WHERE event_id = ?1 AND user_id = ?2"
                        ),
                        params![event_id, user_id],
                        read_entry,
                    )
                    .optional()?
                else {
                    return Ok(None);
                };
                let mut before: i64 = 0;
                for (level, first, end) in line::ranges_before(entry.seq) {
                    let (first, end) = (block_number(first), block_number(end));
                    before += if level == 0 {
                        tx.prepare_cached(
                            "SELECT COUNT(*) FROM waitlist WHERE event_id = ?1 AND seq >= ?2 AND seq < ?3",
                        )?
                        .query_row(params![event_id, first, end], |r| r.get::<_, i64>(0))?
                    } else {
                        tx.prepare_cached(
                            "SELECT COALESCE(SUM(entries), 0) FROM waitlist_blocks \
                             WHERE event_id = ?1 AND level = ?2 AND block >= ?3 AND block < ?4",
                        )?
                        .query_row(params![event_id, level, first, end], |r| r.get::<_, i64>(0))?
                    };
                }
                let length: i64 = tx.query_row(
                    "SELECT entries FROM waitlist_lines WHERE event_id = ?1",
                    [&event_id],
                    |r| r.get(0),
                )?;
                Ok(Some(Place {
                    entry,
                    position: usize::try_from(before + 1).unwrap_or(1),
                    length: usize::try_from(length).unwrap_or(0),
                }))
            })
            .await?)
    }

    async fn leave_waitlist(
        &self,
        event_id: &str,
        user_id: &str,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        self.remove_from_waitlist(
            "user_id",
            event_id.to_string(),
            user_id.to_string(),
            announce.cloned(),
        )
        .await
    }

    async fn next_in_line(
        &self,
        event_id: &str,
        max_seats: usize,
        skip: &[String],
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let (event_id, skip) = (event_id.to_string(), skip.to_vec());
        let each = i64::try_from(limit + skip.len()).unwrap_or(i64::MAX);
        let entries = self
            .db
            .call(move |c| {
                // One indexed read per seats wanted: those who want more than is free are
                // never stepped over one by one.
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {WAITLIST_COLUMNS} FROM waitlist \
                     WHERE event_id = ?1 AND seats = ?2 AND offer_hold_id IS NULL ORDER BY seq LIMIT ?3"
                ))?;
                let mut entries = Vec::new();
                for seats in 1..=max_seats {
                    let seats = i64::try_from(seats).unwrap_or(i64::MAX);
                    for entry in statement.query_map(params![event_id, seats, each], read_entry)? {
                        entries.push(entry?);
                    }
                }
                Ok(entries)
            })
            .await?;
        Ok(super::first_in_line(entries, &skip, limit))
    }

    async fn oversized_entries(
        &self,
        event_id: &str,
        max_seats: usize,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let max_seats = i64::try_from(max_seats).unwrap_or(i64::MAX);
        self.entries_where(
            "seats > ?2 AND offer_hold_id IS NULL ORDER BY seats, seq",
            event_id,
            max_seats,
            limit,
        )
        .await
    }

    async fn offers_ended_before(
        &self,
        event_id: &str,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        self.entries_where(
            "offer_hold_id IS NOT NULL AND offer_until < ?2 ORDER BY offer_until",
            event_id,
            before_ms,
            limit,
        )
        .await
    }

    async fn has_offers(&self, event_id: &str) -> Result<bool, RepoError> {
        let event_id = event_id.to_string();
        Ok(self
            .db
            .call(move |c| {
                Ok(c.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM waitlist WHERE event_id = ?1 AND offer_hold_id IS NOT NULL)",
                )?
                .query_row([event_id], |r| r.get(0))?)
            })
            .await?)
    }

    async fn waitlist_summary(&self, event_id: &str) -> Result<WaitlistSummary, RepoError> {
        let event_id = event_id.to_string();
        Ok(self
            .db
            .call(move |c| {
                let (entries, seats) = c
                    .query_row(
                        "SELECT entries, seats FROM waitlist_lines WHERE event_id = ?1",
                        [&event_id],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                    )
                    .optional()?
                    .unwrap_or((0, 0));
                let offers: i64 = c.query_row(
                    "SELECT COUNT(*) FROM waitlist WHERE event_id = ?1 AND offer_hold_id IS NOT NULL",
                    [&event_id],
                    |r| r.get(0),
                )?;
                let count = |n: i64| usize::try_from(n).unwrap_or(0);
                Ok(WaitlistSummary {
                    entries: count(entries),
                    seats: count(seats),
                    offers: count(offers),
                })
            })
            .await?)
    }

    async fn record_offer(
        &self,
        event_id: &str,
        user_id: &str,
        offer: &Offer,
        announce: Option<&OutboxMessage>,
    ) -> Result<bool, RepoError> {
        let (event_id, user_id) = (event_id.to_string(), user_id.to_string());
        let (offer, announce) = (offer.clone(), announce.cloned());
        Ok(self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let updated = tx.execute(
                    "UPDATE waitlist SET offer_hold_id = ?3, offer_until = ?4 \
                     WHERE event_id = ?1 AND user_id = ?2 AND offer_hold_id IS NULL",
                    params![event_id, user_id, offer.hold_id, offer.until_ms],
                )?;
                if updated == 1
                    && let Some(message) = &announce
                {
                    insert_outbox(&tx, message)?;
                }
                tx.commit()?;
                Ok(updated == 1)
            })
            .await?)
    }

    async fn end_offer(
        &self,
        event_id: &str,
        hold_id: &str,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        self.remove_from_waitlist(
            "offer_hold_id",
            event_id.to_string(),
            hold_id.to_string(),
            announce.cloned(),
        )
        .await
    }
}

/// A sequence or block number as SQLite stores it.
fn block_number(block: u64) -> i64 {
    i64::try_from(block).unwrap_or(i64::MAX)
}

impl SqliteOrders {
    /// Deletes the event's entry whose `column` (a fixed column name, never input) is `value`,
    /// takes it out of the line's counts and writes `announce`, in one transaction; the entry
    /// as it was.
    async fn remove_from_waitlist(
        &self,
        column: &'static str,
        event_id: String,
        value: String,
        announce: Option<OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let removed = tx
                    .query_row(
                        &format!(
                            "DELETE FROM waitlist WHERE event_id = ?1 AND {column} = ?2 RETURNING {WAITLIST_COLUMNS}"
                        ),
                        params![event_id, value],
                        read_entry,
                    )
                    .optional()?;
                if let Some(entry) = &removed {
                    tx.execute(
                        "UPDATE waitlist_lines SET entries = entries - 1, seats = seats - ?2 WHERE event_id = ?1",
                        params![event_id, i64::try_from(entry.seats).unwrap_or(0)],
                    )?;
                    for (level, block) in line::blocks_of(entry.seq) {
                        let block = block_number(block);
                        tx.execute(
                            "UPDATE waitlist_blocks SET entries = entries - 1 \
                             WHERE event_id = ?1 AND level = ?2 AND block = ?3",
                            params![event_id, level, block],
                        )?;
                        tx.execute(
                            "DELETE FROM waitlist_blocks \
                             WHERE event_id = ?1 AND level = ?2 AND block = ?3 AND entries <= 0",
                            params![event_id, level, block],
                        )?;
                    }
                    if let Some(message) = &announce {
                        insert_outbox(&tx, message)?;
                    }
                }
                tx.commit()?;
                Ok(removed)
            })
            .await
    }

    /// The event's entries matching `filter` (fixed SQL, never input; `?2` is `value`), at
    /// most `limit`.
    async fn entries_where(
        &self,
        filter: &'static str,
        event_id: &str,
        value: i64,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let event_id = event_id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {WAITLIST_COLUMNS} FROM waitlist WHERE event_id = ?1 AND {filter} LIMIT ?3"
                ))?;
                let entries = statement
                    .query_map(params![event_id, value, limit], read_entry)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(entries)
            })
            .await
    }

    /// Refunds whose `column` (a fixed column name, never input) is `value`, oldest first.
    async fn refunds_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<Refund>, RepoError> {
        let value = value.to_string();
        let rows = self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {REFUND_COLUMNS} FROM refunds WHERE {column} = ?1 ORDER BY created_at, refund_id"
                ))?;
                let rows = statement
                    .query_map([value], read_refund)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(refund_with_seats).collect()
    }
}
