//! The documents of the order store's collections, and the domain's records they hold.

use mongodb::bson::Bson;
use serde::{Deserialize, Serialize};

use crate::domain::ids::{EventId, HoldId, OrderId, SeatId};
use crate::domain::order::{Order, OrderStatus, Refund};
use crate::domain::ticket::{Ticket, TicketStatus};
use crate::domain::waitlist::{Offer, WaitlistEntry};

/// Ids are stored as their text (references too: bson converts `&T` where `T: Clone`).
macro_rules! stored_as_text {
    ($($id:ty),+) => {$(
        impl From<$id> for Bson {
            fn from(id: $id) -> Self {
                Bson::String(id.into())
            }
        }
    )+};
}

stored_as_text!(EventId, HoldId, OrderId, SeatId);

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderDocument {
    #[serde(rename = "_id")]
    order_id: OrderId,
    user_id: String,
    event_id: EventId,
    seat_ids: Vec<SeatId>,
    amount_minor: i64,
    currency: String,
    payment_intent_id: String,
    status: OrderStatus,
    created_at: i64,
    // Written by cancellations; orders stored before them have none.
    #[serde(default)]
    cancelled_seat_ids: Vec<SeatId>,
    #[serde(default)]
    cancelled_at: Vec<i64>,
    #[serde(default)]
    refunded_minor: i64,
    #[serde(default)]
    revision: i64,
    #[serde(default)]
    email: Option<String>,
}

impl From<&Order> for OrderDocument {
    fn from(o: &Order) -> Self {
        Self {
            order_id: o.order_id.clone(),
            user_id: o.user_id.clone(),
            event_id: o.event_id.clone(),
            seat_ids: o.seat_ids.clone(),
            amount_minor: o.amount_minor,
            currency: o.currency.clone(),
            payment_intent_id: o.payment_intent_id.clone(),
            status: o.status,
            created_at: o.created_at_ms,
            cancelled_seat_ids: o.cancelled_seat_ids.clone(),
            cancelled_at: o.cancelled_at_ms.clone(),
            refunded_minor: o.refunded_minor,
            revision: o.revision,
            email: o.email.clone(),
        }
    }
}

impl From<OrderDocument> for Order {
    fn from(d: OrderDocument) -> Self {
        Self {
            order_id: d.order_id,
            user_id: d.user_id,
            event_id: d.event_id,
            seat_ids: d.seat_ids,
            amount_minor: d.amount_minor,
            currency: d.currency,
            payment_intent_id: d.payment_intent_id,
            status: d.status,
            created_at_ms: d.created_at,
            cancelled_seat_ids: d.cancelled_seat_ids,
            cancelled_at_ms: d.cancelled_at,
            refunded_minor: d.refunded_minor,
            revision: d.revision,
            email: d.email,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RefundDocument {
    #[serde(rename = "_id")]
    refund_id: String,
    order_id: OrderId,
    event_id: EventId,
    user_id: String,
    payment_intent_id: Option<String>,
    seat_ids: Vec<SeatId>,
    amount_minor: i64,
    currency: String,
    cancelled_by: String,
    created_at: i64,
}

impl From<&Refund> for RefundDocument {
    fn from(r: &Refund) -> Self {
        Self {
            refund_id: r.refund_id.clone(),
            order_id: r.order_id.clone(),
            event_id: r.event_id.clone(),
            user_id: r.user_id.clone(),
            payment_intent_id: r.payment_intent_id.clone(),
            seat_ids: r.seat_ids.clone(),
            amount_minor: r.amount_minor,
            currency: r.currency.clone(),
            cancelled_by: r.cancelled_by.clone(),
            created_at: r.created_at_ms,
        }
    }
}

impl From<RefundDocument> for Refund {
    fn from(d: RefundDocument) -> Self {
        Self {
            refund_id: d.refund_id,
            order_id: d.order_id,
            event_id: d.event_id,
            user_id: d.user_id,
            payment_intent_id: d.payment_intent_id,
            seat_ids: d.seat_ids,
            amount_minor: d.amount_minor,
            currency: d.currency,
            cancelled_by: d.cancelled_by,
            created_at_ms: d.created_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TicketDocument {
    #[serde(rename = "_id")]
    ticket_id: String,
    event_id: EventId,
    seat_id: SeatId,
    order_id: OrderId,
    holder_id: Option<String>,
    #[serde(default)]
    holder_email: Option<String>,
    status: TicketStatus,
    version: u32,
    secret: String,
    #[serde(default)]
    transfers: u32,
    entered_at: Option<i64>,
    entry_gate: Option<String>,
    inside: bool,
    changed_at: i64,
}

impl From<&Ticket> for TicketDocument {
    fn from(t: &Ticket) -> Self {
        Self {
            ticket_id: t.ticket_id.clone(),
            event_id: t.event_id.clone(),
            seat_id: t.seat_id.clone(),
            order_id: t.order_id.clone(),
            holder_id: t.holder_id.clone(),
            holder_email: t.holder_email.clone(),
            status: t.status,
            version: t.version,
            secret: t.secret.clone(),
            transfers: t.transfers,
            entered_at: t.entered_at_ms,
            entry_gate: t.entry_gate.clone(),
            inside: t.inside,
            changed_at: t.changed_at_ms,
        }
    }
}

impl From<TicketDocument> for Ticket {
    fn from(d: TicketDocument) -> Self {
        Self {
            ticket_id: d.ticket_id,
            event_id: d.event_id,
            seat_id: d.seat_id,
            order_id: d.order_id,
            holder_id: d.holder_id,
            holder_email: d.holder_email,
            status: d.status,
            version: d.version,
            secret: d.secret,
            transfers: d.transfers,
            entered_at_ms: d.entered_at,
            entry_gate: d.entry_gate,
            inside: d.inside,
            changed_at_ms: d.changed_at,
        }
    }
}

/// A waitlist entry, keyed `<eventId>/<userId>` so that a user is on an event's list once.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WaitlistDocument {
    #[serde(rename = "_id")]
    pub(super) id: String,
    pub(super) event_id: EventId,
    pub(super) user_id: String,
    pub(super) seats: i64,
    pub(super) joined_at: i64,
    #[serde(default)]
    pub(super) email: Option<String>,
    pub(super) offer_hold_id: Option<HoldId>,
    pub(super) offer_until: Option<i64>,
    /// Its place in the line (see `store::line`); entries stored before it was kept have 0.
    #[serde(default)]
    pub(super) seq: i64,
}

impl From<WaitlistDocument> for WaitlistEntry {
    fn from(d: WaitlistDocument) -> Self {
        Self {
            event_id: d.event_id,
            user_id: d.user_id,
            seq: u64::try_from(d.seq).unwrap_or(0),
            seats: usize::try_from(d.seats).unwrap_or(0),
            joined_at_ms: d.joined_at,
            email: d.email,
            offer: d
                .offer_hold_id
                .zip(d.offer_until)
                .map(|(hold_id, until_ms)| Offer { hold_id, until_ms }),
        }
    }
}

pub(super) fn waitlist_id(event_id: &str, user_id: &str) -> String {
    format!("{event_id}/{user_id}")
}

pub(super) fn sold_seat_id(event_id: &str, seat_id: &str) -> String {
    format!("{event_id}/{seat_id}")
}
