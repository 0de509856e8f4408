//! Checkout: the rules that turn a hold and a payment into an order.
//!
//! [`buy`] takes a [`Purchase`] through its steps — the hold is the buyer's and holds exactly
//! the seats asked for; the seats are priced from the event's layout; the payment is a succeeded,
//! unused intent of the buyer's for exactly that total (none when it is 0); the hold is claimed
//! so that it cannot run out before the commit — then writes the order, its sold seats, its
//! `order.purchased` message and (with an idempotency key) its answer in one transaction, and
//! tidies up after it. It knows nothing of HTTP: the handler parses, calls and answers.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use holdfast_common::auth::AuthUser;
use holdfast_common::extract::field_error;
use holdfast_common::messages::{OrderPurchased, TicketPass};
use holdfast_common::money;

use crate::domain::hold::Hold;
use crate::domain::ids::{EventId, HoldId, OrderId, SeatId};
use crate::domain::intent::{Intent, IntentStatus};
use crate::domain::now_millis;
use crate::domain::order::{Order, OrderStatus};
use crate::domain::seat::Layout;
use crate::domain::ticket::Ticket;
use crate::error::OrdersError;
use crate::idempotency::Once;
use crate::layouts::Layouts;
use crate::seat_changes::SeatChange;
use crate::seat_changes::SeatChanges;
use crate::store::OrderStore;
use crate::store::board::Claim;
use crate::store::holds::Holds;
use crate::store::payments::Payments;
use crate::store::{NewPurchase, OutboxMessage, PurchaseOutcome};
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use tokio::sync::Notify;

/// How long a purchase keeps its hold alive at least, from its last check to its commit; longer
/// than a commit takes. A hold ending sooner is extended by this much, at most once per attempt.
pub const PURCHASE_CLAIM: Duration = Duration::from_secs(30);

/// What checkout uses.
#[derive(Clone)]
pub struct Ports {
    pub holds: Holds,
    pub layouts: Arc<Layouts>,
    pub payments: Payments,
    pub orders: Arc<dyn OrderStore>,
    /// How long an idempotent purchase's answer is replayed.
    pub idempotency_ttl: Duration,
    /// Purchases committed (`/metrics`).
    pub purchases: Counter,
    /// Wakes the outbox relay after a purchase.
    pub outbox_wake: Arc<Notify>,
    pub changes: SeatChanges,
    /// Sign the new tickets' passes, which the purchase mail carries.
    pub ticket_keys: Arc<crate::ticket_keys::TicketKeys>,
    /// Admissions to queued events.
    pub gate: crate::admission::Gate,
}

/// What a buyer asks for.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub event_id: EventId,
    pub hold_id: HoldId,
    pub seat_ids: Vec<SeatId>,
    pub payment_intent_id: Option<String>,
    /// The buyer's admission, needed when the event sells through a queue (a waitlist
    /// offer's seats need none: the waitlist chose its buyer).
    pub admission_pass: Option<String>,
}

/// The answer stored with an idempotent purchase: its key, and the status and body that answer
/// an order.
pub struct Receipt<'a> {
    pub once: &'a Once,
    pub status: StatusCode,
    pub answer: fn(&Order) -> String,
}

/// How a purchase ended.
#[derive(Debug)]
pub enum Outcome {
    /// The order is committed.
    Bought(Box<Order>),
    /// Another attempt with the same idempotency key committed first: answer what it answered.
    AnsweredByAnotherAttempt,
}

/// Buys `purchase` for `buyer`. Every refusal leaves everything as it was.
pub async fn buy(
    ports: &Ports,
    buyer: &AuthUser,
    purchase: &Purchase,
    receipt: Option<Receipt<'_>>,
) -> Result<Outcome, OrdersError> {
    let hold = held_seats(ports, buyer, purchase).await?;
    let pass = purchase.admission_pass.as_deref();
    ports.gate.check_hold(buyer.id(), &hold, pass).await?;
    let layout = ports.layouts.existing(&purchase.event_id).await?;
    let total = price(&layout, &hold);
    let intent = payment(ports, buyer, purchase, total, &layout.currency).await?;
    // Claimed in the step that checks it, so the hold cannot run out (and its seats go to
    // someone else) between this check and the commit.
    match ports.holds.claim(&hold, PURCHASE_CLAIM).await? {
        Claim::Claimed { .. } => {}
        Claim::Gone => return Err(OrdersError::HoldUnusable("the hold has expired")),
        Claim::StaleLayout => return Err(OrdersError::LayoutChanged),
    }
    let order = order(buyer, &hold, total, &layout, intent.as_ref());
    let tickets = Ticket::issue(&order);
    let new_purchase = NewPurchase {
        idempotency: receipt.map(|r| {
            r.once.answer(
                r.status,
                (r.answer)(&order),
                order.created_at_ms,
                ports.idempotency_ttl,
            )
        }),
        outbox: announcement(&order, &tickets, &layout, &ports.ticket_keys)?,
        order,
        tickets,
    };
    match ports.orders.purchase(&new_purchase).await? {
        PurchaseOutcome::Committed => {}
        PurchaseOutcome::SeatsTaken(seats) => {
            // The store knows better than the board: show those seats sold from now on.
            mark_sold_elsewhere(ports, &purchase.event_id, &seats).await;
            return Err(OrdersError::SeatsSold(seats));
        }
        PurchaseOutcome::IntentUsed => return Err(OrdersError::IntentUsed),
        PurchaseOutcome::KeyUsed => return Ok(Outcome::AnsweredByAnotherAttempt),
    }
    settle(ports, &hold, &new_purchase.order.order_id, intent).await;
    Ok(Outcome::Bought(Box::new(new_purchase.order)))
}

/// Puts `seats`, found sold in the order store, on the seat board with the orders that bought
/// them (a failure is logged: the board catches up when it next reloads).
async fn mark_sold_elsewhere(ports: &Ports, event_id: &EventId, seats: &[SeatId]) {
    let marked = match ports.orders.sold_seats(event_id).await {
        Ok(mut sold) => {
            sold.retain(|seat, _| seats.contains(seat));
            ports.holds.board().mark_sold(event_id, &sold).await
        }
        Err(error) => Err(holdfast_common::kv::KvError::Backend(error.to_string())),
    };
    if let Err(error) = marked {
        tracing::warn!(%error, "seats sold elsewhere not put on the seat board");
    }
    ports.changes.after(SeatChange::Refreshed(event_id)).await;
}

/// The buyer's hold, if it holds exactly the seats asked for on the event asked for.
async fn held_seats(
    ports: &Ports,
    buyer: &AuthUser,
    purchase: &Purchase,
) -> Result<Hold, OrdersError> {
    let hold = match ports.holds.get(&purchase.hold_id).await? {
        Some(hold) if hold.may_be_used_by(buyer) => hold,
        _ => {
            return Err(OrdersError::HoldUnusable(
                "no such hold: it expired, was released, or is not yours",
            ));
        }
    };
    let wanted: BTreeSet<&SeatId> = purchase.seat_ids.iter().collect();
    let held: BTreeSet<&SeatId> = hold.seat_ids.iter().collect();
    if hold.event_id != purchase.event_id.as_str()
        || wanted != held
        || wanted.len() != purchase.seat_ids.len()
    {
        return Err(OrdersError::HoldUnusable(
            "the hold is for other seats or another event",
        ));
    }
    Ok(hold)
}

/// The price of the hold's seats, in minor units of the event's currency.
fn price(layout: &Layout, hold: &Hold) -> i64 {
    layout.total_of(&hold.seat_ids)
}

/// The intent that pays `total`: none for free seats, else the buyer's succeeded, unused intent
/// of exactly `total` in `currency`.
async fn payment(
    ports: &Ports,
    buyer: &AuthUser,
    purchase: &Purchase,
    total: i64,
    currency: &str,
) -> Result<Option<Intent>, OrdersError> {
    let Some(intent_id) = purchase.payment_intent_id.as_deref() else {
        if total == 0 {
            return Ok(None);
        }
        return Err(field_error("paymentIntentId", "required: these seats are not free").into());
    };
    let intent =
        ports
            .payments
            .owned(intent_id, buyer.id())
            .await?
            .ok_or(OrdersError::PaymentRequired(
                "no such payment intent of yours",
            ))?;
    match intent.status {
        IntentStatus::Succeeded => {}
        IntentStatus::Consumed => return Err(OrdersError::IntentUsed),
        IntentStatus::RequiresConfirmation | IntentStatus::Failed => {
            return Err(OrdersError::PaymentRequired(
                "the payment has not succeeded",
            ));
        }
    }
    if intent.amount_minor != total || intent.currency != currency {
        return Err(OrdersError::PaymentMismatch(format!(
            "the payment is {} {} but the seats cost {} {}",
            money::to_json(intent.amount_minor),
            intent.currency,
            money::to_json(total),
            currency
        )));
    }
    Ok(Some(intent))
}

/// The order for the hold's seats, paid by `intent` (or free).
fn order(
    buyer: &AuthUser,
    hold: &Hold,
    total: i64,
    layout: &Layout,
    intent: Option<&Intent>,
) -> Order {
    let order_id = OrderId::new();
    Order {
        payment_intent_id: intent
            .map_or_else(|| Order::free_payment_id(&order_id), |i| i.id.clone()),
        order_id,
        user_id: buyer.id().to_string(),
        event_id: hold.event_id.clone(),
        seat_ids: hold.seat_ids.clone(),
        amount_minor: total,
        currency: layout.currency.clone(),
        status: OrderStatus::Bought,
        created_at_ms: now_millis(),
        cancelled_seat_ids: Vec::new(),
        cancelled_at_ms: Vec::new(),
        refunded_minor: 0,
        revision: 0,
        email: Some(buyer.email().to_string()),
    }
}

/// The `order.purchased` message, written to the outbox with the order: what the buyer's mail
/// shows, the tickets' passes included.
fn announcement(
    order: &Order,
    tickets: &[Ticket],
    layout: &Layout,
    keys: &crate::ticket_keys::TicketKeys,
) -> Result<OutboxMessage, OrdersError> {
    crate::outbox::message(&OrderPurchased {
        order_id: order.order_id.to_string(),
        user_id: order.user_id.clone(),
        event_id: order.event_id.to_string(),
        seat_ids: SeatId::texts(&order.seat_ids),
        amount: money::to_json(order.amount_minor),
        currency: order.currency.clone(),
        payment_intent_id: order.paid_with().map(str::to_string),
        email: order.email.clone(),
        event: Some(layout.summary()),
        seats: layout.seat_labels(&order.seat_ids),
        tickets: tickets
            .iter()
            .filter_map(|t| {
                Some(TicketPass {
                    ticket_id: t.ticket_id.clone(),
                    seat_id: t.seat_id.to_string(),
                    pass: keys.pass_of(t)?,
                })
            })
            .collect(),
    })
}

/// After the commit: the outbox relay woken, the seats moved from held to sold on the board,
/// the intent marked consumed. The order stands whatever happens here, so failures are logged.
async fn settle(ports: &Ports, hold: &Hold, order_id: &OrderId, intent: Option<Intent>) {
    ports.purchases.inc();
    ports.outbox_wake.notify_one();
    // The seats join the board's sold set as the hold leaves it, in one step.
    if let Err(error) = ports.holds.sell(hold, order_id).await {
        tracing::warn!(%error, hold_id = %hold.hold_id, "sold seats not put on the seat board; it reloads them from the store when cold");
    }
    ports.changes.after(SeatChange::Sold(hold)).await;
    if let Some(intent) = intent
        && let Err(error) = ports
            .payments
            .set_status(intent, IntentStatus::Consumed)
            .await
    {
        tracing::warn!(%error, "payment intent not marked consumed; the order store still refuses its reuse");
    }
}
