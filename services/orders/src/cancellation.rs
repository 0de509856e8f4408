//! Cancellations: the rules that give an order's seats back and refund them.
//!
//! [`cancel`] lets the buyer cancel until `CANCELLATION_CUTOFF_HOURS` before the event, and the
//! event's organizer or an admin at any time; anyone else is told there is no such order. Some
//! seats or all may be cancelled; each cancellation refunds the price of its seats (on a venue,
//! their categories' prices, which cannot change once a seat is sold; on a grid, its share of
//! the order's total pro rata in minor units), the last one the remainder, so the refunds of an
//! order add up to exactly what it cost. The order, the sold-seat records, the refund and the `order.cancelled` message
//! are written in ONE transaction, applied only to the order's revision the plan was made from,
//! so two cancellations of one order never both refund a seat. Cancelling seats already
//! cancelled changes nothing and answers the order as it stands.
//!
//! The refund is simulated: it succeeds at once and is recorded in the order store (intents
//! live in the TTL store only until they expire). After the commit the seats go back on the
//! seat board, where the waitlist may offer them; the `order.cancelled` message does the same
//! on every replica if this step is lost.

use std::collections::BTreeSet;

use holdfast_common::auth::AuthUser;
use holdfast_common::messages::{OrderCancelled, RefundDetails};
use holdfast_common::money;

use crate::domain::access::runs_event;
use crate::domain::ids::{OrderId, SeatId};
use crate::domain::now_millis;
use crate::domain::order::{Order, OrderStatus, Refund};
use crate::domain::seat::Layout;
use crate::error::OrdersError;
use crate::layouts::Layouts;
use crate::seat_changes::SeatChange;
use crate::seat_changes::SeatChanges;
use crate::store::holds::Holds;
use crate::store::{CancelOutcome, NewCancellation, OutboxMessage};
use crate::store::{OrderStore, TicketStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often a cancellation is planned again after another one changed the order first.
const ATTEMPTS: usize = 5;

/// An order as a cancellation leaves it, with every refund it has had.
#[derive(Debug, Clone)]
pub struct Cancelled {
    pub order: Order,
    pub refunds: Vec<Refund>,
}

/// What cancellations use.
#[derive(Clone)]
pub struct Ports {
    pub holds: Holds,
    pub layouts: Arc<Layouts>,
    pub orders: Arc<dyn OrderStore>,
    /// The order's tickets: a buyer cannot cancel a seat whose ticket they gave away.
    pub tickets: Arc<dyn TicketStore>,
    /// How long before an event's start its buyers may no longer cancel.
    pub cutoff: Duration,
    /// Wakes the outbox relay after a cancellation.
    pub outbox_wake: Arc<Notify>,
    pub changes: SeatChanges,
}

/// Cancels `seats` of the order (all when `None`) for `caller`.
pub async fn cancel(
    ports: &Ports,
    caller: &AuthUser,
    order_id: &OrderId,
    seats: Option<&[SeatId]>,
) -> Result<Cancelled, OrdersError> {
    for _ in 0..ATTEMPTS {
        let order = ports
            .orders
            .order(order_id)
            .await?
            .ok_or(OrdersError::NoSuchOrder)?;
        let layout = ports.layouts.get(&order.event_id).await?;
        let runs_event = runs_event(caller, layout.as_ref());
        if order.user_id != caller.id() && !runs_event {
            return Err(OrdersError::NoSuchOrder);
        }
        let release = seats_to_release(&order, seats)?;
        if release.is_empty() {
            let refunds = ports.orders.refunds_of(order_id).await?;
            return Ok(Cancelled { order, refunds });
        }
        if !runs_event {
            let starts_at_ms = layout.as_ref().and_then(|l| l.starts_at_ms);
            check_window(ports.cutoff, starts_at_ms, now_millis())?;
            refuse_given_away(ports, &order, &release).await?;
        }
        let amount = refund_amount(&order, &release, layout.as_ref());
        let cancellation = plan(&order, release, amount, caller, layout.as_ref())?;
        match ports.orders.cancel(&cancellation).await? {
            CancelOutcome::Stale => continue,
            CancelOutcome::Committed => {}
        }
        give_back(ports, &cancellation.order, &cancellation.released).await;
        let refunds = ports.orders.refunds_of(order_id).await?;
        return Ok(Cancelled {
            order: cancellation.order,
            refunds,
        });
    }
    Err(OrdersError::CancellationBusy)
}

/// The seats asked for that still stand; every one asked for must be the order's.
fn seats_to_release(order: &Order, asked: Option<&[SeatId]>) -> Result<Vec<SeatId>, OrdersError> {
    let Some(asked) = asked else {
        return Ok(order.standing_seats().cloned().collect());
    };
    let unique: BTreeSet<&SeatId> = asked.iter().collect();
    if unique.len() != asked.len() {
        return Err(OrdersError::InvalidSeats("a seat is named twice".into()));
    }
    let foreign: Vec<&str> = asked
        .iter()
        .filter(|seat| !order.seat_ids.contains(seat))
        .map(SeatId::as_str)
        .collect();
    if !foreign.is_empty() {
        return Err(OrdersError::InvalidSeats(format!(
            "not seats of this order: {}",
            foreign.join(", ")
        )));
    }
    Ok(asked
        .iter()
        .filter(|seat| !order.cancelled_seat_ids.contains(seat))
        .cloned()
        .collect())
}

/// Refuses a buyer's cancellation of seats whose tickets they transferred: the ticket is
/// someone else's now (the organizer may still cancel it).
async fn refuse_given_away(
    ports: &Ports,
    order: &Order,
    release: &[SeatId],
) -> Result<(), OrdersError> {
    let tickets = ports.tickets.tickets_of_order(&order.order_id).await?;
    let given: Vec<SeatId> = tickets
        .into_iter()
        .filter(|t| {
            t.status == crate::domain::ticket::TicketStatus::Valid
                && t.holder_id.as_deref() != Some(order.user_id.as_str())
                && release.contains(&t.seat_id)
        })
        .map(|t| t.seat_id)
        .collect();
    if given.is_empty() {
        Ok(())
    } else {
        Err(OrdersError::TicketsTransferred(given))
    }
}

/// Refuses a buyer's cancellation once the event starts within the cutoff. It fails closed:
/// when the start time cannot be read (`None`: the event is gone or its date is unreadable),
/// the window cannot be checked and the buyer is refused (the organizer still can cancel).
fn check_window(
    cutoff: std::time::Duration,
    starts_at_ms: Option<i64>,
    now_ms: i64,
) -> Result<(), OrdersError> {
    let starts_at_ms = starts_at_ms.ok_or(OrdersError::CancellationUnverifiable)?;
    let cutoff_ms = i64::try_from(cutoff.as_millis()).unwrap_or(i64::MAX);
    if now_ms >= starts_at_ms.saturating_sub(cutoff_ms) {
        return Err(OrdersError::CancellationClosed(cutoff.as_secs() / 3600));
    }
    Ok(())
}

/// The share of `total` that `cancelled` of `seats` seats stand for, rounded down; the shares of
/// successive cancellations differ by what each refunds, and all seats get exactly `total`.
pub fn share(total: i64, seats: usize, cancelled: usize) -> i64 {
    if seats == 0 {
        return 0;
    }
    let share = i128::from(total) * cancelled as i128 / seats as i128;
    i64::try_from(share).unwrap_or(i64::MAX)
}

/// What cancelling `release` refunds: the rest of the order's total when they are its last
/// seats; else on a venue their prices, on a grid their pro rata share.
fn refund_amount(order: &Order, release: &[SeatId], layout: Option<&Layout>) -> i64 {
    let seats = order.seat_ids.len();
    let before = order.cancelled_seat_ids.len();
    let after = before + release.len();
    let remaining = order
        .amount_minor
        .saturating_sub(order.refunded_minor)
        .max(0);
    if after >= seats {
        return remaining;
    }
    match layout.filter(|layout| layout.venue.is_some()) {
        Some(layout) => layout.total_of(release).min(remaining),
        None => share(order.amount_minor, seats, after) - share(order.amount_minor, seats, before),
    }
}

/// Everything the cancellation of `release` refunding `amount` writes.
fn plan(
    order: &Order,
    release: Vec<SeatId>,
    amount: i64,
    caller: &AuthUser,
    layout: Option<&Layout>,
) -> Result<NewCancellation, OrdersError> {
    let seats = order.seat_ids.len();
    let before = order.cancelled_seat_ids.len();
    let after = before + release.len();
    let now = now_millis();
    let mut updated = order.clone();
    updated.cancelled_seat_ids.extend(release.iter().cloned());
    // Times recorded for every earlier cancelled seat (older records may lack them).
    if updated.cancelled_at_ms.len() == before {
        updated
            .cancelled_at_ms
            .extend(std::iter::repeat_n(now, release.len()));
    }
    updated.refunded_minor += amount;
    updated.revision += 1;
    updated.status = if after == seats {
        OrderStatus::Cancelled
    } else {
        OrderStatus::PartlyCancelled
    };
    let refund = Refund {
        refund_id: uuid::Uuid::new_v4().to_string(),
        order_id: order.order_id.clone(),
        event_id: order.event_id.clone(),
        user_id: order.user_id.clone(),
        payment_intent_id: order.paid_with().map(str::to_string),
        seat_ids: release.clone(),
        amount_minor: amount,
        currency: order.currency.clone(),
        cancelled_by: caller.id().to_string(),
        created_at_ms: now,
    };
    Ok(NewCancellation {
        outbox: announcement(&updated, &refund, layout)?,
        order: updated,
        released: release,
        refund,
    })
}

/// The `order.cancelled` message, written to the outbox with the cancellation.
fn announcement(
    order: &Order,
    refund: &Refund,
    layout: Option<&Layout>,
) -> Result<OutboxMessage, OrdersError> {
    crate::outbox::message(&OrderCancelled {
        order_id: order.order_id.to_string(),
        user_id: order.user_id.clone(),
        event_id: order.event_id.to_string(),
        seat_ids: SeatId::texts(&refund.seat_ids),
        status: order.status.as_str().to_string(),
        refund: RefundDetails {
            refund_id: refund.refund_id.clone(),
            amount: money::to_json(refund.amount_minor),
            currency: refund.currency.clone(),
            payment_intent_id: refund.payment_intent_id.clone(),
        },
        cancelled_by: refund.cancelled_by.clone(),
        email: order.email.clone(),
        event: layout.map(Layout::summary),
        seats: layout
            .map(|l| l.seat_labels(&refund.seat_ids))
            .unwrap_or_default(),
    })
}

/// After the commit: the outbox relay woken and the seats back on the seat board. The
/// cancellation stands whatever happens here; the `order.cancelled` message repeats the board
/// step (see [`crate::waitlist`]). Then the waitlist is offered the seats.
pub async fn give_back(ports: &Ports, order: &Order, seats: &[SeatId]) {
    let event_id = &order.event_id;
    ports.outbox_wake.notify_one();
    let board = ports.holds.board();
    if let Err(error) = board.unsell(event_id, &order.order_id, seats).await {
        tracing::warn!(%error, %event_id, "cancelled seats not taken off the seat board yet");
    }
    ports.changes.after(SeatChange::GivenBack(event_id)).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{OrdersError, check_window, share};

    #[test]
    fn the_buyers_window_fails_closed() {
        let day = Duration::from_secs(24 * 3600);
        let now = 1_000_000_000_000;
        let day_ms = 24 * 3600 * 1000;
        assert!(check_window(day, Some(now + 2 * day_ms), now).is_ok());
        assert!(matches!(
            check_window(day, Some(now + day_ms / 2), now),
            Err(OrdersError::CancellationClosed(24))
        ));
        // No readable start time: refused, never let through.
        assert!(matches!(
            check_window(day, None, now),
            Err(OrdersError::CancellationUnverifiable)
        ));
        assert!(matches!(
            check_window(Duration::ZERO, None, now),
            Err(OrdersError::CancellationUnverifiable)
        ));
    }

    #[test]
    fn shares_add_up_to_the_total_in_minor_units() {
        // 1000 over 3 seats, one at a time: 333, 333, 334.
        let steps: Vec<i64> = (0..3)
            .map(|k| share(1000, 3, k + 1) - share(1000, 3, k))
            .collect();
        assert_eq!(steps, [333, 333, 334]);
        assert_eq!(steps.iter().sum::<i64>(), 1000);
        // Two then one of 1001: 667 then 334.
        assert_eq!(share(1001, 3, 2), 667);
        assert_eq!(share(1001, 3, 3) - share(1001, 3, 2), 334);
        assert_eq!(share(0, 4, 2), 0);
        assert_eq!(share(i64::MAX, 2, 2), i64::MAX);
    }
}
