//! Orders, refunds and sold seats on SQLite.

use async_trait::async_trait;
use holdfast_common::docstore::StoreError;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::rows::{
    ORDER_COLUMNS, ORDER_READ_COLUMNS, REFUND_COLUMNS, read_order, read_refund, refund_with_seats,
    seats_json, with_seats,
};
use super::{SqliteOrders, insert_outbox, is_constraint};
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::now_millis;
use crate::domain::order::{Order, Refund, is_block};
use crate::store::{
    CancelOutcome, NewCancellation, NewPurchase, OrderStore, PurchaseOutcome, RepoError, SoldSeats,
};

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
    super::tickets::revoke_tickets(&tx, &order.order_id, &p.released, now_millis())?;
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
    super::tickets::insert_tickets(&tx, &p.tickets)?;
    insert_outbox(&tx, &p.outbox)?;
    tx.commit()?;
    Ok(PurchaseOutcome::Committed)
}

fn block_blocking(
    c: &mut rusqlite::Connection,
    event_id: &str,
    seat_ids: &[SeatId],
    block: &str,
) -> Result<bool, StoreError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert =
            tx.prepare("INSERT INTO sold_seats (event_id, seat_id, order_id) VALUES (?1, ?2, ?3)")?;
        for seat in seat_ids {
            match insert.execute(params![event_id, seat, block]) {
                Ok(_) => {}
                // Dropping the transaction rolls the rows inserted so far back.
                Err(e) if is_constraint(&e) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
    }
    tx.commit()?;
    Ok(true)
}

fn unblock_blocking(
    c: &mut rusqlite::Connection,
    event_id: &str,
    seat_ids: &[SeatId],
) -> Result<Vec<(SeatId, OrderId)>, StoreError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut freed = Vec::new();
    {
        let mut find =
            tx.prepare("SELECT order_id FROM sold_seats WHERE event_id = ?1 AND seat_id = ?2")?;
        let mut delete = tx.prepare(
            "DELETE FROM sold_seats WHERE event_id = ?1 AND seat_id = ?2 AND order_id = ?3",
        )?;
        for seat in seat_ids {
            let order: Option<String> = find
                .query_row(params![event_id, seat], |r| r.get(0))
                .optional()?;
            if let Some(order) = order.filter(|order| is_block(order)) {
                delete.execute(params![event_id, seat, order])?;
                freed.push((seat.clone(), OrderId::from_stored(order)));
            }
        }
    }
    tx.commit()?;
    Ok(freed)
}

#[async_trait]
impl OrderStore for SqliteOrders {
    async fn block_seats(
        &self,
        event_id: &EventId,
        seat_ids: &[SeatId],
        block: &OrderId,
    ) -> Result<bool, RepoError> {
        let (event_id, seat_ids, block) =
            (event_id.to_string(), seat_ids.to_vec(), block.to_string());
        Ok(self
            .db
            .call(move |c| block_blocking(c, &event_id, &seat_ids, &block))
            .await?)
    }

    async fn unblock_seats(
        &self,
        event_id: &EventId,
        seat_ids: &[SeatId],
    ) -> Result<Vec<(SeatId, OrderId)>, RepoError> {
        let (event_id, seat_ids) = (event_id.to_string(), seat_ids.to_vec());
        Ok(self
            .db
            .call(move |c| unblock_blocking(c, &event_id, &seat_ids))
            .await?)
    }

    async fn sold_seats(&self, event_id: &EventId) -> Result<SoldSeats, RepoError> {
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

    async fn order(&self, order_id: &OrderId) -> Result<Option<Order>, RepoError> {
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

    async fn cancel(&self, cancellation: &NewCancellation) -> Result<CancelOutcome, RepoError> {
        let cancellation = cancellation.clone();
        Ok(self
            .db
            .call(move |c| cancel_blocking(c, &cancellation))
            .await?)
    }

    async fn refunds_of(&self, order_id: &OrderId) -> Result<Vec<Refund>, RepoError> {
        self.refunds_where("order_id", order_id).await
    }

    async fn orders_of_event(&self, event_id: &EventId) -> Result<Vec<Order>, RepoError> {
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

    async fn refunds_of_event(&self, event_id: &EventId) -> Result<Vec<Refund>, RepoError> {
        self.refunds_where("event_id", event_id).await
    }
}

impl SqliteOrders {
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
