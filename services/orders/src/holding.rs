//! Holding seats: a buyer's request checked against the event's layout and taken on the seat
//! board, all seats or none, then counted and reported as a seat change; and releasing a hold.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;

use crate::domain::hold::Hold;
use crate::domain::ids::{EventId, SeatId};
use crate::error::OrdersError;
use crate::layouts::Layouts;
use crate::seat_changes::{SeatChange, SeatChanges};
use crate::store::holds::{HoldError, Holds};

/// What holding uses.
#[derive(Clone)]
pub struct Ports {
    pub holds: Holds,
    pub layouts: Arc<Layouts>,
    /// Holds taken (`/metrics`).
    pub taken: Counter,
    /// Requests refused because a seat was taken (`/metrics`).
    pub conflicts: Counter,
    pub changes: SeatChanges,
}

/// Holds `seat_ids` of the event for `user_id`: every seat or none.
pub async fn hold(
    ports: &Ports,
    user_id: &str,
    event_id: &EventId,
    seat_ids: Vec<SeatId>,
) -> Result<Hold, OrdersError> {
    let layout = ports.layouts.existing(event_id).await?;
    let seats = ports.holds.check_request(&layout, seat_ids.clone())?;
    let mut taken = ports.holds.take(user_id, &layout, seats).await;
    if matches!(taken, Err(HoldError::StaleLayout)) {
        // This replica's copy of the layout predates a change: check the seats against the
        // current layout and try once more.
        ports.layouts.invalidate(event_id);
        let layout = ports.layouts.existing(event_id).await?;
        let seats = ports.holds.check_request(&layout, seat_ids)?;
        taken = ports.holds.take(user_id, &layout, seats).await;
    }
    let hold = match taken {
        Ok(hold) => hold,
        Err(HoldError::Conflict(seats)) => {
            ports.conflicts.inc();
            return Err(OrdersError::ConflictSeats(seats));
        }
        Err(other) => return Err(other.into()),
    };
    ports.taken.inc();
    ports.changes.after(SeatChange::Held(&hold)).await;
    Ok(hold)
}

/// Releases `hold`: every seat of it is free again (and offered to the waitlist).
pub async fn release(ports: &Ports, hold: &Hold) -> Result<(), OrdersError> {
    ports.holds.release(hold).await?;
    ports.changes.after(SeatChange::Released(hold)).await;
    Ok(())
}
