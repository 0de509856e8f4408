//! The contract every adapter of the order store meets, a module per capability, each run
//! once per adapter (the MongoDB runs only where `MONGODB_URI` names a server).

mod checkin;
mod idempotency;
mod orders;
mod outbox;
mod tickets;
mod waitlist;

use std::collections::HashSet;

use holdfast_common::docstore::Database;
use holdfast_common::testing::TestStore;

use super::*;
use crate::domain::ids::{OrderId, SeatId};
use crate::domain::now_millis;
use crate::domain::order::{Order, OrderStatus, Refund};
use crate::domain::waitlist::{Offer, WaitlistEntry};

/// How long the idempotency records of these tests live.
const KEY_TTL_MS: i64 = 86_400_000;

fn purchase(
    user: &str,
    event: &str,
    seats: &[&str],
    intent: &str,
    key: Option<&str>,
    at: i64,
) -> NewPurchase {
    let order_id = OrderId::new();
    let order = Order {
        order_id: order_id.clone(),
        user_id: user.into(),
        event_id: event.into(),
        seat_ids: seats.iter().map(|s| SeatId::from(*s)).collect(),
        amount_minor: 1_000 * i64::try_from(seats.len()).unwrap(),
        currency: "INR".into(),
        payment_intent_id: intent.into(),
        status: OrderStatus::Bought,
        created_at_ms: at,
        cancelled_seat_ids: Vec::new(),
        cancelled_at_ms: Vec::new(),
        refunded_minor: 0,
        revision: 0,
        email: Some(format!("{user}@holdfast.test")),
    };
    NewPurchase {
        tickets: crate::domain::ticket::Ticket::issue(&order),
        order,
        idempotency: key.map(|k| IdempotentResponse {
            key: k.into(),
            request_hash: "hash".into(),
            status: 201,
            body: format!("{{\"orderId\":\"{order_id}\"}}"),
            created_at_ms: at,
            expires_at_ms: at + KEY_TTL_MS,
        }),
        outbox: OutboxMessage {
            id: uuid::Uuid::new_v4().to_string(),
            routing_key: "order.purchased".into(),
            payload: format!("{{\"orderId\":\"{order_id}\"}}"),
        },
    }
}

/// The seats sold on the event.
async fn sold_in(orders: &dyn OrderStore, event_id: &str) -> HashSet<String> {
    orders
        .sold_seats(&event_id.into())
        .await
        .unwrap()
        .into_keys()
        .map(String::from)
        .collect()
}

/// The cancellation of `seats` of `order`, planned from the order as given.
fn cancellation(order: &Order, seats: &[&str], amount: i64) -> NewCancellation {
    let mut updated = order.clone();
    updated
        .cancelled_seat_ids
        .extend(seats.iter().map(|s| SeatId::from(*s)));
    updated.refunded_minor += amount;
    updated.revision += 1;
    updated.status = if updated.cancelled_seat_ids.len() == order.seat_ids.len() {
        OrderStatus::Cancelled
    } else {
        OrderStatus::PartlyCancelled
    };
    NewCancellation {
        released: seats.iter().map(|s| SeatId::from(*s)).collect(),
        refund: Refund {
            refund_id: uuid::Uuid::new_v4().to_string(),
            order_id: order.order_id.clone(),
            event_id: order.event_id.clone(),
            user_id: order.user_id.clone(),
            payment_intent_id: order.paid_with().map(str::to_string),
            seat_ids: seats.iter().map(|s| SeatId::from(*s)).collect(),
            amount_minor: amount,
            currency: order.currency.clone(),
            cancelled_by: order.user_id.clone(),
            created_at_ms: now_millis(),
        },
        outbox: OutboxMessage {
            id: uuid::Uuid::new_v4().to_string(),
            routing_key: "order.cancelled".into(),
            payload: "{}".into(),
        },
        order: updated,
    }
}

fn entry(event: &str, user: &str, seats: usize, at: i64) -> WaitlistEntry {
    WaitlistEntry {
        event_id: event.into(),
        user_id: user.into(),
        seq: 0,
        seats,
        joined_at_ms: at,
        email: Some(format!("{user}@holdfast.test")),
        offer: None,
    }
}

/// The stores of a fresh SQLite database (kept while the `TestStore` lives).
async fn sqlite() -> Option<(Stores, TestStore)> {
    let test = TestStore::sqlite(&SCHEMA).await;
    Some((Stores::open(&test.store), test))
}

/// The stores of a fresh MongoDB database, where a server is configured.
async fn mongodb() -> Option<(Stores, TestStore)> {
    let test = TestStore::mongodb(&SCHEMA).await?;
    Some((Stores::open(&test.store), test))
}
