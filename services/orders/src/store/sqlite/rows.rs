//! Rows of the order store's tables as the domain's records.

use rusqlite::Row;
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::domain::ids::{EventId, HoldId, OrderId, SeatId};
use crate::domain::order::{Order, OrderStatus, Refund};
use crate::domain::waitlist::{Offer, WaitlistEntry};
use crate::store::RepoError;

/// Ids are stored as their text.
macro_rules! stored_as_text {
    ($($id:ty),+) => {$(
        impl ToSql for $id {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $id {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                String::column_result(value).map(<$id>::from_stored)
            }
        }
    )+};
}

stored_as_text!(EventId, HoldId, OrderId, SeatId);

pub(super) const ORDER_COLUMNS: &str = "order_id, user_id, event_id, seat_ids, amount_minor, currency, payment_intent_id, status, created_at, email";
/// What a read of an order selects: the columns a purchase writes, then those cancellations
/// change.
pub(super) const ORDER_READ_COLUMNS: &str = "order_id, user_id, event_id, seat_ids, amount_minor, currency, payment_intent_id, status, created_at, email, cancelled_seat_ids, refunded_minor, revision, cancelled_at";

/// An order as read, with its JSON seat lists and cancellation times still to decode (see
/// [`with_seats`]).
pub(super) type OrderRow = (Order, String, String, String);

pub(super) fn read_order(row: &Row<'_>) -> rusqlite::Result<OrderRow> {
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

pub(super) fn with_seats(
    (mut order, seats, cancelled, cancelled_at): OrderRow,
) -> Result<Order, RepoError> {
    order.seat_ids = seat_list(&seats, &order.order_id)?;
    order.cancelled_seat_ids = seat_list(&cancelled, &order.order_id)?;
    // A time the migration could not find (no refund named the seat) reads as unknown.
    let times: Vec<Option<i64>> = serde_json::from_str(&cancelled_at).map_err(|e| {
        RepoError::Corrupt(format!("cancellation times of {}: {e}", order.order_id))
    })?;
    order.cancelled_at_ms = times.into_iter().map_while(|t| t).collect();
    Ok(order)
}

pub(super) fn seat_list(json: &str, owner: &str) -> Result<Vec<SeatId>, RepoError> {
    serde_json::from_str(json).map_err(|e| RepoError::Corrupt(format!("seats of {owner}: {e}")))
}

pub(super) fn seats_json(seats: &[SeatId]) -> String {
    serde_json::to_string(seats).unwrap_or_else(|_| "[]".into())
}

pub(super) const REFUND_COLUMNS: &str = "refund_id, order_id, event_id, user_id, payment_intent_id, seat_ids, amount_minor, currency, cancelled_by, created_at";

pub(super) fn read_refund(row: &Row<'_>) -> rusqlite::Result<(Refund, String)> {
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

pub(super) fn refund_with_seats(
    (mut refund, seats): (Refund, String),
) -> Result<Refund, RepoError> {
    refund.seat_ids = seat_list(&seats, &refund.refund_id)?;
    Ok(refund)
}

pub(super) const WAITLIST_COLUMNS: &str =
    "event_id, user_id, seats, joined_at, offer_hold_id, offer_until, email, seq";

pub(super) fn read_entry(row: &Row<'_>) -> rusqlite::Result<WaitlistEntry> {
    let hold_id: Option<HoldId> = row.get(4)?;
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
