//! The waitlist: first come, first served, one entry per user and event, kept in the order
//! store.
//!
//! When seats come free (a cancellation, a hold released or run out) and no one holds them, an
//! offer round gives them to the first user in line whose wanted count fits: a hold is taken
//! for that user on free seats (side by side in one row when possible) for
//! `WAITLIST_OFFER_SECONDS`, and the offer is recorded on their entry with a
//! `waitlist.offered` message in one transaction. An offer bought takes the user off the list;
//! one left to run out ends with `waitlist.expired` and the seats pass to the next in line.
//!
//! Offers are made once per freed seat however many orders processes run rounds at the same
//! time, without a lock: the seat board takes a seat for one hold only, and the store records an
//! offer only on an entry that has none, so a process that loses either race releases what it
//! took and looks again. The offer's hold record (what `GET /holds` shows and a purchase
//! checks) is written only after the offer is recorded, so nobody sees an offer that another
//! process wins.
//!
//! Rounds start after each cancellation, release, expiry and join in this process, and on
//! every `order.cancelled` from the bus (one consumer of a shared queue), which also puts the
//! cancelled seats back on the seat board if the cancelling process could not.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use holdfast_common::auth::AuthUser;
use holdfast_common::bus::MessageBus;
use holdfast_common::messages::{
    Message, OrderCancelled, WaitlistExpired, WaitlistOffered, WaitlistRemoved,
};
use holdfast_common::sync::lock;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, mpsc};

use crate::domain::hold::Hold;
use crate::domain::ids::{EventId, HoldId, OrderId, SeatId};
use crate::domain::now_millis;
use crate::domain::seat::{Layout, Seat};
use crate::domain::waitlist::{Offer, Place, WaitlistEntry};
use crate::error::OrdersError;
use crate::layouts::Layouts;
use crate::live::Live;
use crate::seat_changes::{RoundWanted, SeatChange, SeatChanges};
use crate::store::WaitlistStore;
use crate::store::board::{ExpiredHold, Snapshot};
use crate::store::holds::{HoldError, Holds};
use holdfast_common::venue::BestRequest;

/// How many offers one round makes at most (each takes a few store round trips).
const OFFERS_PER_ROUND: usize = 50;
/// How long a round keeps going after others took the seats it picked.
const LOST_RACES_PER_ROUND: usize = 10;
/// After this long past its end, an offer whose hold is gone is ended by any round, so that a
/// process stopping before it swept its own offers leaves no one stuck.
const STALE_OFFER_GRACE_MS: i64 = 5_000;
/// How often this process sweeps the events it made offers on, so that an offer runs out on
/// time even when nobody looks at the event.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How long an empty waitlist read here is trusted by rounds this process starts. A join in
/// another process runs a round there; `order.cancelled` rounds never trust it.
const EMPTY_TRUSTED_FOR: Duration = Duration::from_secs(1);
/// The shared queue of `order.cancelled` messages for the orders service.
const CANCELLATIONS_QUEUE: &str = "orders.cancellations";

/// What the waitlist uses.
#[derive(Clone)]
pub struct Ports {
    /// The entries and offers, in the order store.
    pub entries: Arc<dyn WaitlistStore>,
    pub holds: Holds,
    pub layouts: Arc<Layouts>,
    /// The rounds running in this process and the events it made offers on.
    pub rounds: Arc<Rounds>,
    /// The most seats one hold may take (entries wanting more are removed).
    pub max_seats_per_hold: usize,
    /// How long an offer's hold lasts.
    pub offer_ttl: Duration,
    /// Wakes the outbox relay after an offer or its end is written.
    pub outbox_wake: Arc<Notify>,
    pub changes: SeatChanges,
}

/// Puts the caller on the event's waitlist for `seats` seats; answers their place and whether
/// they were added (`false`: they already were, and nothing changed). While at least `seats`
/// seats are free the caller is refused (409 `SEATS_AVAILABLE`): a waitlist is for an event
/// that is sold out, and joining would only turn into an offer hold they did not ask for, which
/// counts toward their own holds on the event.
pub async fn join(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
    seats: usize,
) -> Result<(Place, bool), OrdersError> {
    let layout = ports.layouts.existing(event_id).await?;
    if let Some(place) = ports.entries.waitlist_place(event_id, caller.id()).await? {
        return Ok((place, false));
    }
    let free = free_seats(&layout, &ports.holds.snapshot(event_id).await?).len();
    if free >= seats {
        return Err(OrdersError::SeatsAvailable(free));
    }
    let joined = ports
        .entries
        .join_waitlist(&WaitlistEntry {
            event_id: event_id.clone(),
            user_id: caller.id().to_string(),
            seq: 0,
            seats,
            joined_at_ms: now_millis(),
            email: Some(caller.email().to_string()),
            offer: None,
        })
        .await?;
    if joined {
        ports.rounds.joined(event_id);
        start_round(ports, event_id);
    }
    let place = ports
        .entries
        .waitlist_place(event_id, caller.id())
        .await?
        .ok_or(OrdersError::NotWaitlisted)?;
    Ok((place, joined))
}

/// The caller's place on the event's waitlist.
pub async fn place(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
) -> Result<Place, OrdersError> {
    ports
        .entries
        .waitlist_place(event_id, caller.id())
        .await?
        .ok_or(OrdersError::NotWaitlisted)
}

/// Takes the caller off the event's waitlist, releasing an offer they had.
pub async fn leave(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
) -> Result<(), OrdersError> {
    let entry = ports
        .entries
        .leave_waitlist(event_id, caller.id(), None)
        .await?
        .ok_or(OrdersError::NotWaitlisted)?;
    if let Some(offer) = entry.offer
        && let Some(hold) = ports.holds.get(&offer.hold_id).await?
    {
        ports.holds.release(&hold).await?;
        ports.changes.after(SeatChange::Released(&hold)).await;
    }
    Ok(())
}

/// Runs an offer round for the event in the background, logging a failure (the next
/// trigger, or the stale-offer rule, makes up for it). While a round of the event runs in this
/// process, further triggers make it run once more instead of starting rounds of their own.
pub fn start_round(ports: &Ports, event_id: &EventId) {
    if !ports.rounds.begin_round(event_id) {
        return;
    }
    let (ports, event_id) = (ports.clone(), event_id.clone());
    tokio::spawn(async move {
        loop {
            let result = if ports.rounds.known_empty(&event_id) {
                Ok(())
            } else {
                offer_round(&ports, &event_id).await
            };
            if let Err(error) = result {
                tracing::warn!(%error, %event_id, "waitlist offer round failed");
            }
            if !ports.rounds.again(&event_id) {
                return;
            }
        }
    });
}

/// Offers the event's free seats to its waitlist, first in line first, until none fits. Every
/// read is indexed and bounded (the head of the line by seats wanted, offers that ran out, the
/// line's figures): a round costs the same whatever the length of the queue.
pub async fn offer_round(ports: &Ports, event_id: &EventId) -> Result<(), OrdersError> {
    let max_seats = ports.max_seats_per_hold;
    let mut passed_over: Vec<String> = Vec::new();
    let mut lost_races = 0;
    let mut offers = 0;
    while offers < OFFERS_PER_ROUND && lost_races < LOST_RACES_PER_ROUND {
        if ports.entries.waitlist_summary(event_id).await?.entries == 0 {
            ports.rounds.read_empty(event_id);
            return Ok(());
        }
        end_stale_offers(ports, event_id).await?;
        remove_oversized(ports, event_id, max_seats).await?;
        let Some(layout) = ports.layouts.get(event_id).await? else {
            return Ok(());
        };
        let snapshot = ports.holds.snapshot(event_id).await?;
        let free = free_seats(&layout, &snapshot);
        let fits = free.len().min(max_seats);
        if fits == 0 {
            return Ok(());
        }
        let next = ports
            .entries
            .next_in_line(event_id, fits, &passed_over, 1)
            .await?;
        let Some(entry) = next.into_iter().next() else {
            return Ok(());
        };
        let seats = pick(&layout, &free, entry.seats);
        match offer(ports, &layout, &entry, seats).await? {
            Offered::Yes => offers += 1,
            Offered::LostRace => lost_races += 1,
            Offered::CannotHold => passed_over.push(entry.user_id.clone()),
        }
    }
    Ok(())
}

/// Takes off the waitlist, with a mail saying why, the entries that want more seats than one
/// may now hold at once (`MAX_SEATS_PER_HOLD` was lowered since they joined): no offer could
/// ever be made to them, and they must not hold up the line.
async fn remove_oversized(
    ports: &Ports,
    event_id: &EventId,
    max_seats: usize,
) -> Result<(), OrdersError> {
    let oversized = ports
        .entries
        .oversized_entries(event_id, max_seats, OFFERS_PER_ROUND)
        .await?;
    for entry in oversized {
        let message = crate::outbox::message(&WaitlistRemoved {
            event_id: entry.event_id.to_string(),
            user_id: entry.user_id.clone(),
            seats: entry.seats,
            max_seats,
            reason: "more seats than MAX_SEATS_PER_HOLD".into(),
            email: entry.email.clone(),
        })?;
        if ports
            .entries
            .leave_waitlist(event_id, &entry.user_id, Some(&message))
            .await?
            .is_some()
        {
            tracing::info!(%event_id, user_id = %entry.user_id, seats = entry.seats, max_seats, "waitlist entry wanting more than a hold may take removed");
            ports.outbox_wake.notify_one();
        }
    }
    Ok(())
}

enum Offered {
    Yes,
    /// Another process took the seats or made the offer first: look again.
    LostRace,
    /// The user cannot hold more on this event now: the next in line gets the seats.
    CannotHold,
}

/// Holds `seats` for the entry's user and records the offer, or gives the hold back.
async fn offer(
    ports: &Ports,
    layout: &Layout,
    entry: &WaitlistEntry,
    seats: Vec<SeatId>,
) -> Result<Offered, OrdersError> {
    let request = ports.holds.check_request(layout, seats)?;
    let ttl = ports.offer_ttl;
    let hold = match ports
        .holds
        .take_unrecorded(&entry.user_id, layout, request, ttl, true)
        .await
    {
        Ok(hold) => hold,
        Err(HoldError::Conflict(_) | HoldError::StaleLayout | HoldError::LayoutChanging) => {
            return Ok(Offered::LostRace);
        }
        Err(HoldError::TooManyHolds(_) | HoldError::Invalid(_)) => {
            return Ok(Offered::CannotHold);
        }
        Err(error) => return Err(error.into()),
    };
    let offer = Offer {
        hold_id: hold.hold_id.clone(),
        until_ms: hold.expires_at_ms,
    };
    let message = crate::outbox::message(&WaitlistOffered {
        event_id: hold.event_id.to_string(),
        user_id: hold.user_id.clone(),
        hold_id: hold.hold_id.to_string(),
        seat_ids: SeatId::texts(&hold.seat_ids),
        expires_at: holdfast_common::when::format_millis(hold.expires_at_ms),
        email: entry.email.clone(),
        event: Some(layout.summary()),
        seats: layout.seat_labels(&hold.seat_ids),
    })?;
    let recorded = ports
        .entries
        .record_offer(&entry.event_id, &entry.user_id, &offer, Some(&message))
        .await;
    match recorded {
        Ok(true) => {
            ports.outbox_wake.notify_one();
            if let Err(error) = ports.holds.keep(&hold, ttl).await {
                // The offer stands in the store but its hold could not be kept: it ends now,
                // announced as expired, and the seats go to the next round.
                offer_expired(ports, entry, &hold.hold_id).await?;
                return Err(error.into());
            }
            ports.changes.after(SeatChange::Held(&hold)).await;
            ports.rounds.offered_on(&hold.event_id);
            Ok(Offered::Yes)
        }
        Ok(false) => {
            ports.holds.release(&hold).await?;
            Ok(Offered::LostRace)
        }
        Err(error) => {
            ports.holds.release(&hold).await?;
            Err(error.into())
        }
    }
}

/// Ends offers that ran out a while ago and whose hold is gone (see [`STALE_OFFER_GRACE_MS`]).
async fn end_stale_offers(ports: &Ports, event_id: &EventId) -> Result<(), OrdersError> {
    let ended_before = now_millis() - STALE_OFFER_GRACE_MS;
    let stale = ports
        .entries
        .offers_ended_before(event_id, ended_before, OFFERS_PER_ROUND)
        .await?;
    for entry in stale {
        let Some(offer) = &entry.offer else { continue };
        if ports.holds.get(&offer.hold_id).await?.is_none() {
            offer_expired(ports, &entry, &offer.hold_id).await?;
        }
    }
    Ok(())
}

/// Ends the offer whose hold just expired, if its user is still waitlisted (a user who left
/// the list took the offer with them). The sweep ends what this misses.
async fn expired_offer_hold(ports: &Ports, hold: &ExpiredHold) -> Result<(), OrdersError> {
    match ports
        .entries
        .waitlist_place(&hold.event_id, &hold.user_id)
        .await?
    {
        Some(place) => offer_expired(ports, &place.entry, &hold.hold_id).await,
        None => Ok(()),
    }
}

/// Ends the offer `hold_id` made to `entry` that ran out, announcing `waitlist.expired` once.
async fn offer_expired(
    ports: &Ports,
    entry: &WaitlistEntry,
    hold_id: &HoldId,
) -> Result<(), OrdersError> {
    let event_id = &entry.event_id;
    let message = crate::outbox::message(&WaitlistExpired {
        event_id: event_id.to_string(),
        user_id: entry.user_id.clone(),
        hold_id: hold_id.to_string(),
        email: entry.email.clone(),
    })?;
    if ports
        .entries
        .end_offer(event_id, hold_id, Some(&message))
        .await?
        .is_some()
    {
        ports.outbox_wake.notify_one();
    }
    Ok(())
}

/// Seats of the layout on general sale (not wheelchair spaces nor their companions) neither
/// held nor sold, in layout order.
fn free_seats(layout: &Layout, snapshot: &Snapshot) -> Vec<SeatId> {
    let taken: HashSet<&SeatId> = snapshot.held.iter().chain(&snapshot.sold).collect();
    layout
        .seat_ids()
        .into_iter()
        .filter(|seat| !taken.contains(seat) && layout.on_general_sale(seat))
        .collect()
}

/// `count` of the `free` seats: on a venue its best available (split if need be); on a grid
/// the first run of side-by-side seats in one row that is long enough, else the first `count`.
fn pick(layout: &Layout, free: &[SeatId], count: usize) -> Vec<SeatId> {
    if let Some(plan) = &layout.venue {
        let free: HashSet<&str> = free.iter().map(SeatId::as_str).collect();
        let request = BestRequest {
            count,
            allow_split: true,
            ..BestRequest::default()
        };
        return plan
            .best(|id| free.contains(id), &request)
            .map(|(seats, _)| seats)
            .unwrap_or_default();
    }
    let free: Vec<Seat> = free.iter().filter_map(|id| Seat::parse(id)).collect();
    let mut run_start = 0;
    for i in 0..free.len() {
        let continues =
            i > 0 && free[i].row == free[i - 1].row && free[i].number == free[i - 1].number + 1;
        if !continues {
            run_start = i;
        }
        if i + 1 - run_start == count {
            return free[run_start..=i].iter().map(Seat::id).collect();
        }
    }
    free.iter().take(count).map(Seat::id).collect()
}

/// What this process knows of its waitlist work: the events with a round running (and whether
/// another was asked for meanwhile), and the events it made offers on, swept every
/// [`SWEEP_EVERY`] until no offer is left, so that its offers run out on time.
#[derive(Default)]
pub struct Rounds {
    running: Mutex<HashMap<EventId, bool>>,
    offered_on: Mutex<HashSet<EventId>>,
    /// Events whose waitlist was empty when last read here, until when that is trusted.
    empty_until: Mutex<HashMap<EventId, Instant>>,
}

impl Rounds {
    /// Whether the event's waitlist was read empty less than [`EMPTY_TRUSTED_FOR`] ago, so
    /// that holds released and run out in an on-sale without a waitlist cost no store reads.
    fn known_empty(&self, event_id: &EventId) -> bool {
        lock(&self.empty_until)
            .get(event_id)
            .is_some_and(|until| *until > Instant::now())
    }

    fn read_empty(&self, event_id: &EventId) {
        let mut empty = lock(&self.empty_until);
        let now = Instant::now();
        if empty.len() >= 10_000 {
            empty.retain(|_, until| *until > now);
        }
        empty.insert(event_id.clone(), now + EMPTY_TRUSTED_FOR);
    }

    fn joined(&self, event_id: &EventId) {
        lock(&self.empty_until).remove(event_id);
    }

    /// Whether the caller should run a round of the event (none is running here).
    fn begin_round(&self, event_id: &EventId) -> bool {
        let mut running = lock(&self.running);
        match running.get_mut(event_id) {
            Some(again) => {
                *again = true;
                false
            }
            None => {
                running.insert(event_id.clone(), false);
                true
            }
        }
    }

    /// After a round: whether to run another (one was asked for meanwhile); else the event's
    /// round ends.
    fn again(&self, event_id: &EventId) -> bool {
        let mut running = lock(&self.running);
        match running.get_mut(event_id) {
            Some(again) if *again => {
                *again = false;
                true
            }
            _ => {
                running.remove(event_id);
                false
            }
        }
    }

    fn offered_on(&self, event_id: &EventId) {
        lock(&self.offered_on).insert(event_id.clone());
    }
}

/// Starts the waitlist's background work: rounds asked for by seat changes (see
/// [`crate::seat_changes`]), expired holds end offers and start rounds, the events with offers
/// are swept, and `order.cancelled` from the bus starts rounds.
pub async fn spawn(
    ports: &Ports,
    live: &Arc<Live>,
    bus: &dyn MessageBus,
    mut rounds_wanted: mpsc::UnboundedReceiver<RoundWanted>,
) -> anyhow::Result<()> {
    let asked = ports.clone();
    tokio::spawn(async move {
        while let Some(RoundWanted { event_id }) = rounds_wanted.recv().await {
            start_round(&asked, &event_id);
        }
    });
    let alive: Weak<Live> = Arc::downgrade(live);
    let mut expirations = ports.holds.board().expirations();
    let on_expiry = ports.clone();
    tokio::spawn(async move {
        loop {
            let hold: ExpiredHold = match expirations.recv().await {
                Ok(hold) => hold,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            if alive.strong_count() == 0 {
                return;
            }
            let ports = &on_expiry;
            if Hold::is_offer_id(&hold.hold_id)
                && let Err(error) = expired_offer_hold(ports, &hold).await
            {
                tracing::warn!(%error, hold_id = %hold.hold_id, "expired offer not ended yet");
            }
            start_round(ports, &hold.event_id);
        }
    });

    let live: Weak<Live> = Arc::downgrade(live);
    let sweeper = ports.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if live.strong_count() == 0 {
                return;
            }
            let events: Vec<EventId> = lock(&sweeper.rounds.offered_on).iter().cloned().collect();
            for event_id in events {
                let _ = sweeper.holds.board().sweep(&event_id).await;
                let offers_left = sweeper.entries.has_offers(&event_id).await.unwrap_or(true);
                if !offers_left {
                    lock(&sweeper.rounds.offered_on).remove(&event_id);
                }
            }
        }
    });

    let mut cancellations = bus
        .subscribe(CANCELLATIONS_QUEUE, &[OrderCancelled::TYPE])
        .await?;
    let on_cancel = ports.clone();
    tokio::spawn(async move {
        while let Some(delivery) = cancellations.next().await {
            let message = match delivery.message.decode::<OrderCancelled>() {
                Ok(message) => message,
                Err(error) => {
                    delivery.unreadable(error).await;
                    continue;
                }
            };
            let Some(event_id) = EventId::parse(&message.event_id) else {
                let why = format!("no event {:?}", message.event_id);
                delivery.unreadable(why).await;
                continue;
            };
            let (order_id, seats) = (
                OrderId::named(&message.order_id),
                SeatId::all(&message.seat_ids),
            );
            let handled = cancelled(&on_cancel, &event_id, &order_id, &seats).await;
            let acked = match handled {
                Ok(()) => delivery.ack().await,
                Err(error) => {
                    tracing::warn!(%error, %event_id, "order.cancelled not handled; redelivering");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    delivery.requeue().await
                }
            };
            if let Err(error) = acked {
                tracing::warn!(%error, "cannot settle an order.cancelled delivery");
            }
        }
    });
    Ok(())
}

/// A cancellation heard from the bus: its seats back on the board (in one step on the board,
/// only those still sold to the cancelled order: a seat bought again since stays sold), then
/// an offer round.
async fn cancelled(
    ports: &Ports,
    event_id: &EventId,
    order_id: &OrderId,
    seats: &[SeatId],
) -> Result<(), OrdersError> {
    if order_id.is_empty() {
        return Ok(());
    }
    if !seats.is_empty() {
        ports
            .holds
            .board()
            .unsell(event_id, order_id, seats)
            .await?;
        ports.changes.after(SeatChange::Refreshed(event_id)).await;
    }
    offer_round(ports, event_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats(ids: &[&str]) -> Vec<SeatId> {
        ids.iter().map(|id| SeatId::from(*id)).collect()
    }

    fn grid() -> Layout {
        Layout {
            event_id: "e".into(),
            rows: 2,
            seats_per_row: 5,
            price_minor: 100,
            currency: "INR".into(),
            version: 0,
            organizer_id: None,
            starts_at_ms: None,
            venue: None,
            about: crate::domain::seat::EventFacts::default(),
        }
    }

    #[test]
    fn offers_pick_side_by_side_seats_when_there_are_some() {
        let free = seats(&["R1-S1", "R1-S3", "R1-S4", "R2-S1", "R2-S2", "R2-S3"]);
        let layout = grid();
        assert_eq!(pick(&layout, &free, 1), ["R1-S1"]);
        assert_eq!(pick(&layout, &free, 2), ["R1-S3", "R1-S4"]);
        assert_eq!(pick(&layout, &free, 3), ["R2-S1", "R2-S2", "R2-S3"]);
        // No run of four: the first four free seats.
        assert_eq!(
            pick(&layout, &free, 4),
            ["R1-S1", "R1-S3", "R1-S4", "R2-S1"]
        );
        // A row's end and the next row's start are not side by side.
        let split = seats(&["R1-S5", "R2-S1"]);
        assert_eq!(pick(&layout, &split, 2), ["R1-S5", "R2-S1"]);
    }
}
