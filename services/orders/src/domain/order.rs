//! Orders and refunds: what a purchase makes and what cancellations change.

use serde::{Deserialize, Serialize};

use crate::domain::ids::{EventId, OrderId, SeatId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: OrderId,
    pub user_id: String,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub amount_minor: i64,
    pub currency: String,
    /// The intent that paid; for free seats [`Order::free_payment_id`], which keeps the
    /// store's "one order per intent" key simple.
    pub payment_intent_id: String,
    pub status: OrderStatus,
    pub created_at_ms: i64,
    /// Seats given back by cancellations, in the order they were given back.
    pub cancelled_seat_ids: Vec<SeatId>,
    /// When each of `cancelled_seat_ids` was given back (index for index); empty for orders
    /// whose cancellations were stored before the time was kept.
    pub cancelled_at_ms: Vec<i64>,
    /// What the cancellations refunded so far, in minor units.
    pub refunded_minor: i64,
    /// Bumped by every cancellation; a cancellation applies only to the revision it read.
    pub revision: i64,
    /// The buyer's e-mail address when they bought, for the notifications; orders stored
    /// before it was kept have none.
    pub email: Option<String>,
}

/// What became of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum OrderStatus {
    /// Bought and paid for; `reserved` on the wire and in the stores, as existing clients and
    /// records have it.
    #[serde(rename = "reserved")]
    Bought,
    /// Some of its seats were cancelled and refunded; the rest still stand.
    #[serde(rename = "partially_cancelled")]
    PartlyCancelled,
    /// Every seat was cancelled and refunded.
    #[serde(rename = "cancelled")]
    Cancelled,
}

impl OrderStatus {
    /// The stored and answered spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bought => "reserved",
            Self::PartlyCancelled => "partially_cancelled",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status a stored spelling names.
    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "reserved" => Some(Self::Bought),
            "partially_cancelled" => Some(Self::PartlyCancelled),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// Marks the payment id of an order of free seats.
const FREE: &str = "free:";

impl Order {
    /// The payment id recorded for a free order.
    pub fn free_payment_id(order_id: &OrderId) -> String {
        format!("{FREE}{order_id}")
    }

    /// The intent that paid for the order; `None` when the seats were free.
    pub fn paid_with(&self) -> Option<&str> {
        (!self.payment_intent_id.starts_with(FREE)).then_some(self.payment_intent_id.as_str())
    }

    /// The seats that still stand (bought and not cancelled).
    pub fn standing_seats(&self) -> impl Iterator<Item = &SeatId> {
        self.seat_ids
            .iter()
            .filter(|seat| !self.cancelled_seat_ids.contains(seat))
    }

    /// The cancelled seats, each with when it was given back (`None` when not recorded).
    pub fn cancelled_seats(&self) -> impl Iterator<Item = (&SeatId, Option<i64>)> {
        self.cancelled_seat_ids
            .iter()
            .enumerate()
            .map(|(i, seat)| (seat, self.cancelled_at_ms.get(i).copied()))
    }
}

/// The simulated refund of a cancellation: always `refunded` at once, for `amount_minor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub refund_id: String,
    pub order_id: OrderId,
    pub event_id: EventId,
    /// The buyer.
    pub user_id: String,
    /// The intent refunded; `None` for free seats.
    pub payment_intent_id: Option<String>,
    /// The seats this cancellation gave back.
    pub seat_ids: Vec<SeatId>,
    pub amount_minor: i64,
    pub currency: String,
    /// Who cancelled: the buyer, the organizer or an admin.
    pub cancelled_by: String,
    pub created_at_ms: i64,
}

/// Seats an organizer keeps back (house seats, broken seats, camera positions) are recorded as
/// sold to a *block*: an order id of this prefix, which no buyer's order has, so the seat board
/// and the order store's unique seat key keep every buyer off them as off any sold seat.
const BLOCK_PREFIX: &str = "block:";

/// A new block's id.
pub fn new_block() -> OrderId {
    OrderId::named(&format!("{BLOCK_PREFIX}{}", uuid::Uuid::new_v4()))
}

/// Whether a sold seat's order id is a block's.
pub fn is_block(order_id: &str) -> bool {
    order_id.starts_with(BLOCK_PREFIX)
}
