//! Holding seats: a buyer's request checked against the event's layout and taken on the seat
//! board, all seats or none, then counted and reported as a seat change; and releasing a hold.
//! On an event sold through a queue, taking and changing seats need the buyer's admission
//! (see [`crate::admission::Gate`]).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use crate::admission::Gate;
use crate::domain::hold::{BestAsk, Hold};
use crate::domain::ids::{EventId, SeatId};
use crate::error::OrdersError;
use crate::layouts::Layouts;
use crate::live::Live;
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
    /// Seat maps, whose counts a refusal of best available reports: a map is built once per
    /// version for every reader, and a sold-out event refuses many buyers a second.
    pub live: Arc<Live>,
    /// Admissions to queued events.
    pub gate: Gate,
}

/// Holds `seat_ids` of the event for `user_id` (with `pass`, their admission, if the event
/// has a queue): every seat or none.
pub async fn hold(
    ports: &Ports,
    user_id: &str,
    event_id: &EventId,
    seat_ids: Vec<SeatId>,
    pass: Option<&str>,
) -> Result<Hold, OrdersError> {
    ports.gate.check(user_id, event_id, pass).await?;
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

/// Holds the best available seats of a venue event for `user_id`: `count` side by side in one
/// row (or split, when allowed), taken in one atomic step; answers the hold and whether it is
/// split. 409 `NO_SEATS_AVAILABLE` with what is left per category and section when nothing
/// fits.
pub async fn hold_best(
    ports: &Ports,
    user_id: &str,
    event_id: &EventId,
    ask: &BestAsk,
    pass: Option<&str>,
) -> Result<(Hold, bool), OrdersError> {
    ports.gate.check(user_id, event_id, pass).await?;
    let mut layout = ports.layouts.existing(event_id).await?;
    for attempt in 0..2 {
        let (plan, request) = ask
            .check(&layout, ports.holds.max_seats_per_hold())
            .map_err(|(field, message)| OrdersError::InvalidField { field, message })?;
        match ports
            .holds
            .take_best(user_id, &layout, &plan, request)
            .await
        {
            Ok((hold, split)) => {
                ports.taken.inc();
                ports.changes.after(SeatChange::Held(&hold)).await;
                return Ok((hold, split));
            }
            Err(HoldError::StaleLayout) if attempt == 0 => {
                ports.layouts.invalidate(event_id);
                layout = ports.layouts.existing(event_id).await?;
            }
            Err(HoldError::NoSeats) => {
                let map = ports
                    .live
                    // Current, as the buyer's next request will find the seats.
                    .map(&ports.holds, &layout, Duration::ZERO)
                    .await?;
                return Err(OrdersError::NoSeatsAvailable(map.available().clone()));
            }
            Err(HoldError::Conflict(seats)) => {
                ports.conflicts.inc();
                return Err(OrdersError::ConflictSeats(seats));
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(OrdersError::LayoutChanging)
}

/// Gives `hold` the seats `seat_ids` (adding some, dropping some, or swapping) in one step:
/// the result is checked as a new hold would be, the seats kept stay held throughout, and when
/// a seat to add is taken nothing changes (409 `CONFLICT_SEATS`). A waitlist offer's seats
/// cannot change. `user_id` is who asks, with `pass` their admission if the event has a queue.
pub async fn change(
    ports: &Ports,
    hold: Hold,
    seat_ids: Vec<SeatId>,
    user_id: &str,
    pass: Option<&str>,
) -> Result<Hold, OrdersError> {
    if hold.offer {
        return Err(OrdersError::InvalidSeats(
            "the seats of a waitlist offer cannot be changed".into(),
        ));
    }
    ports.gate.check(user_id, &hold.event_id, pass).await?;
    let layout = ports.layouts.existing(&hold.event_id).await?;
    let seats = ports.holds.check_request(&layout, seat_ids)?;
    let changed = match ports.holds.change(hold, seats).await {
        Ok(Some(changed)) => changed,
        Ok(None) => return Err(OrdersError::NoSuchHold),
        Err(HoldError::Conflict(seats)) => {
            ports.conflicts.inc();
            return Err(OrdersError::ConflictSeats(seats));
        }
        Err(other) => return Err(other.into()),
    };
    ports.changes.after(SeatChange::Changed(&changed)).await;
    Ok(changed)
}

/// Extends `hold` by `extend` (or the default), within the caps; `None` when it is gone.
/// Keeping seats longer is shopping longer: on a queued event, `user_id`'s admission (`pass`)
/// must still stand.
pub async fn refresh(
    ports: &Ports,
    hold: Hold,
    extend: Option<Duration>,
    user_id: &str,
    pass: Option<&str>,
) -> Result<Option<Hold>, OrdersError> {
    ports.gate.check_hold(user_id, &hold, pass).await?;
    Ok(ports.holds.refresh(hold, extend).await?)
}

/// Releases `hold`: every seat of it is free again (and offered to the waitlist).
pub async fn release(ports: &Ports, hold: &Hold) -> Result<(), OrdersError> {
    ports.holds.release(hold).await?;
    ports.changes.after(SeatChange::Released(hold)).await;
    Ok(())
}
