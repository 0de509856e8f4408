//! Seats an organizer keeps back — house seats, broken seats, camera positions — and gives
//! back to sale. A blocked seat is recorded as sold to a block (see
//! [`crate::domain::order::is_block`]): the seat board and the order store's unique seat key
//! keep buyers off it exactly as off a sold seat, maps show it unavailable, and the sales view
//! counts it apart.
//!
//! Blocking takes the seats on the board first, in one atomic step like any hold (so a seat
//! held or sold by a buyer is refused with 409 `CONFLICT_SEATS` and nothing is blocked), then
//! records the block in the order store and marks the seats sold on the board. Unblocking
//! deletes the block records, then takes the seats off the board's sold seats and offers them
//! to the waitlist.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use holdfast_common::auth::AuthUser;

use crate::domain::access::runs_event;
use crate::domain::hold::SeatRequest;
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::order::{is_block, new_block};
use crate::error::OrdersError;
use crate::layouts::Layouts;
use crate::seat_changes::{SeatChange, SeatChanges};
use crate::store::OrderStore;
use crate::store::holds::Holds;

/// The most seats one request blocks or unblocks.
pub const MAX_SEATS_PER_REQUEST: usize = 1_000;
/// How long the seats being blocked stay held while the block is recorded.
const BLOCKING_HOLD: Duration = Duration::from_secs(30);

/// What blocking uses.
#[derive(Clone)]
pub struct Ports {
    pub holds: Holds,
    pub layouts: Arc<Layouts>,
    pub orders: Arc<dyn OrderStore>,
    pub changes: SeatChanges,
}

/// The event's seats, checked for its organizer (or an admin).
async fn organizer_request(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
    seat_ids: Vec<SeatId>,
) -> Result<SeatRequest, OrdersError> {
    let layout = ports.layouts.existing(event_id).await?;
    if !runs_event(caller, Some(&layout)) {
        return Err(OrdersError::NotOrganizer);
    }
    // Companion seats may be blocked on their own: the companion rule is for buyers.
    SeatRequest::check_any(&layout, seat_ids, MAX_SEATS_PER_REQUEST)
        .map_err(OrdersError::InvalidSeats)
}

/// Blocks `seat_ids` of the event, all or none; answers every seat blocked now.
pub async fn block(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
    seat_ids: Vec<SeatId>,
) -> Result<Vec<SeatId>, OrdersError> {
    let request = organizer_request(ports, caller, event_id, seat_ids).await?;
    let layout = ports.layouts.existing(event_id).await?;
    let holder = format!("block:{}", caller.id());
    let hold = ports
        .holds
        .take_unrecorded(&holder, &layout, request, BLOCKING_HOLD, false)
        .await?;
    let block = new_block();
    match ports
        .orders
        .block_seats(event_id, &hold.seat_ids, &block)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            // Sold in the order store though not on the board: the board learns it.
            ports.holds.release(&hold).await?;
            ports.changes.after(SeatChange::Refreshed(event_id)).await;
            return Err(OrdersError::SeatsSold(hold.seat_ids));
        }
        Err(error) => {
            ports.holds.release(&hold).await?;
            return Err(error.into());
        }
    }
    ports.holds.sell(&hold, &block).await?;
    ports.changes.after(SeatChange::Refreshed(event_id)).await;
    blocked(ports, caller, event_id).await
}

/// Gives `seat_ids` of the event back to sale (those blocked; others are left as they are);
/// answers every seat still blocked.
pub async fn unblock(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
    seat_ids: Vec<SeatId>,
) -> Result<Vec<SeatId>, OrdersError> {
    let request = organizer_request(ports, caller, event_id, seat_ids).await?;
    let freed = ports
        .orders
        .unblock_seats(event_id, request.seat_ids())
        .await?;
    let mut by_block: HashMap<OrderId, Vec<SeatId>> = HashMap::new();
    for (seat, block) in freed {
        by_block.entry(block).or_default().push(seat);
    }
    for (block, seats) in &by_block {
        ports.holds.board().unsell(event_id, block, seats).await?;
    }
    if !by_block.is_empty() {
        ports.changes.after(SeatChange::GivenBack(event_id)).await;
    }
    blocked(ports, caller, event_id).await
}

/// The event's blocked seats, for its organizer (or an admin), in id order.
pub async fn blocked(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
) -> Result<Vec<SeatId>, OrdersError> {
    let layout = ports.layouts.existing(event_id).await?;
    if !runs_event(caller, Some(&layout)) {
        return Err(OrdersError::NotOrganizer);
    }
    let mut seats: Vec<SeatId> = ports
        .orders
        .sold_seats(event_id)
        .await?
        .into_iter()
        .filter(|(_, order)| is_block(order))
        .map(|(seat, _)| seat)
        .collect();
    seats.sort_unstable();
    Ok(seats)
}
