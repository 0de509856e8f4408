//! The in-process seat board: one map per event behind one lock, so every operation is one
//! critical section, as the Redis scripts are one atomic step. Held seats and slots are also
//! ordered by expiry, so sweeping costs what expired, not what is held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use holdfast_common::kv::KvError;
use tokio::sync::broadcast;

use holdfast_common::venue::best_available_where;

use super::{
    BestTake, CHANGE_BUFFER, Changed, Claim, ExpiredHold, Granted, HoldKeys, LayoutLock, SeatBoard,
    SeatDelta, SeatNews, SeatState, Snapshot, TakeRequest, Taken,
};
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::now_millis;
use crate::store::SoldSeats;

mod event;

use self::event::{EventBoard, HeldSeat};

/// The in-process adapter of [`SeatBoard`].
pub struct MemoryBoard {
    events: Mutex<HashMap<EventId, EventBoard>>,
    changes: broadcast::Sender<Arc<SeatNews>>,
    expirations: broadcast::Sender<ExpiredHold>,
}

impl Default for MemoryBoard {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBoard {
    pub fn new() -> Self {
        Self {
            events: Mutex::new(HashMap::new()),
            changes: broadcast::channel(CHANGE_BUFFER).0,
            expirations: broadcast::channel(CHANGE_BUFFER).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<EventId, EventBoard>> {
        holdfast_common::sync::lock(&self.events)
    }

    /// Runs `step` on the event's board after sweeping it, inside the lock; `changes` made by
    /// the step bump the version and are announced.
    fn with_event<T>(
        &self,
        event_id: &EventId,
        step: impl FnOnce(&mut EventBoard, i64) -> (T, Vec<(SeatId, SeatState)>),
    ) -> T {
        let now = now_millis();
        let mut events = self.lock();
        let board = events
            .entry(event_id.clone())
            .or_insert_with(EventBoard::new);
        self.sweep_locked(event_id, board, now);
        let (answer, changes) = step(board, now);
        self.bump(event_id, board, changes);
        answer
    }

    fn bump(&self, event_id: &EventId, board: &mut EventBoard, changes: Vec<(SeatId, SeatState)>) {
        if changes.is_empty() {
            return;
        }
        board.note(&changes);
        board.version += 1;
        // Nobody listening is fine.
        let _ = self.changes.send(Arc::new(SeatNews::Changed(SeatDelta {
            event_id: event_id.clone(),
            version: board.version,
            changes,
        })));
    }

    fn sweep_locked(&self, event_id: &EventId, board: &mut EventBoard, now: i64) {
        // Each popped entry is the one its map holds (the maps and indexes change together).
        while board
            .slots_by_expiry
            .first()
            .is_some_and(|(until, _)| *until <= now)
        {
            if let Some((_, slot)) = board.slots_by_expiry.pop_first() {
                board.slots.remove(&slot);
            }
        }
        let mut expired: Vec<(SeatId, HeldSeat)> = Vec::new();
        while board
            .held_by_expiry
            .first()
            .is_some_and(|(until, _)| *until <= now)
        {
            if let Some((_, seat)) = board.held_by_expiry.pop_first()
                && let Some(held) = board.held.remove(&seat)
            {
                expired.push((seat, held));
            }
        }
        if expired.is_empty() {
            return;
        }
        let mut holds: Vec<ExpiredHold> = Vec::new();
        for (seat, held) in &expired {
            match holds.iter_mut().find(|h| h.hold_id == held.hold_id) {
                Some(hold) => hold.seat_ids.push(seat.clone()),
                None => holds.push(ExpiredHold {
                    hold_id: held.hold_id.clone(),
                    user_id: held.user_id.clone(),
                    event_id: event_id.clone(),
                    seat_ids: vec![seat.clone()],
                }),
            }
        }
        let changes = expired
            .into_iter()
            .map(|(seat, _)| (seat, SeatState::Available))
            .collect();
        self.bump(event_id, board, changes);
        for hold in holds {
            let _ = self.expirations.send(hold);
        }
    }
}

/// Why no hold can be taken on the event right now, if anything stands in the way.
fn refusal(board: &EventBoard, now: i64, request: &TakeRequest) -> Option<Taken> {
    if !board.sold_known {
        Some(Taken::SoldUnknown)
    } else if board.layout_locked(now) {
        Some(Taken::LayoutLocked)
    } else if board.layout_version != request.layout_version {
        Some(Taken::StaleLayout)
    } else {
        None
    }
}

/// Takes `seat_ids` for the request's hold, or none, once [`refusal`] found nothing in the
/// way.
fn take_seats(
    board: &mut EventBoard,
    now: i64,
    request: &TakeRequest,
    seat_ids: &[SeatId],
) -> (Taken, Vec<(SeatId, SeatState)>) {
    let conflicts: Vec<SeatId> = seat_ids
        .iter()
        .filter(|s| board.sold.contains_key(*s) || board.held.contains_key(*s))
        .cloned()
        .collect();
    if !conflicts.is_empty() {
        return (Taken::Conflicts(conflicts), Vec::new());
    }
    let Some(slot) =
        (0..request.max_holds).find(|n| !board.slots.contains_key(&(request.user_id.clone(), *n)))
    else {
        return (Taken::TooManyHolds, Vec::new());
    };
    let expires_at_ms = now.saturating_add(millis(request.ttl));
    board.take_slot(
        (request.user_id.clone(), slot),
        &request.hold_id,
        expires_at_ms,
    );
    for seat in seat_ids {
        board.hold_seat(
            seat,
            HeldSeat {
                hold_id: request.hold_id.clone(),
                user_id: request.user_id.clone(),
                expires_at_ms,
            },
        );
    }
    let changes = seat_ids
        .iter()
        .map(|s| (s.clone(), SeatState::Held))
        .collect();
    let version = board.version + 1;
    (
        Taken::Held {
            slot,
            expires_at_ms,
            version,
        },
        changes,
    )
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[async_trait]
impl SeatBoard for MemoryBoard {
    async fn take(&self, request: &TakeRequest) -> Result<Taken, KvError> {
        Ok(self.with_event(&request.event_id, |board, now| {
            match refusal(board, now, request) {
                Some(refused) => (refused, Vec::new()),
                None => take_seats(board, now, request, &request.seat_ids),
            }
        }))
    }

    async fn take_best(&self, request: &TakeRequest, best: &BestTake) -> Result<Granted, KvError> {
        Ok(self.with_event(&request.event_id, |board, now| {
            if let Some(refused) = refusal(board, now, request) {
                return (Granted::refused(refused), Vec::new());
            }
            let mask = board.venue_mask(&best.plan);
            let n = best.request.count;
            let Some(grant) = best_available_where(
                &best.plan.venue,
                |i| mask.is_free(i),
                |b| mask.has_room(b, n),
                &best.request,
            ) else {
                return (Granted::refused(Taken::NoFit), Vec::new());
            };
            let seats = &best.plan.venue.seats;
            let seat_ids: Vec<SeatId> = grant
                .seats
                .iter()
                .map(|&i| SeatId::named(&seats[i].id))
                .collect();
            let (taken, changes) = take_seats(board, now, request, &seat_ids);
            (Granted::of(taken, seat_ids, grant.split), changes)
        }))
    }

    async fn change(
        &self,
        hold: &HoldKeys,
        add: &[SeatId],
        remove: &[SeatId],
    ) -> Result<Changed, KvError> {
        Ok(self.with_event(&hold.event_id, |board, now| {
            if !board.intact(hold, now) {
                return (Changed::Gone, Vec::new());
            }
            let conflicts: Vec<SeatId> = add
                .iter()
                .filter(|s| board.sold.contains_key(*s) || board.held.contains_key(*s))
                .cloned()
                .collect();
            if !conflicts.is_empty() {
                return (Changed::Conflicts(conflicts), Vec::new());
            }
            let Some(held) = hold
                .seat_ids
                .first()
                .and_then(|s| board.held.get(s))
                .cloned()
            else {
                return (Changed::Gone, Vec::new());
            };
            let mut changes = Vec::with_capacity(add.len() + remove.len());
            for seat in add {
                board.hold_seat(seat, held.clone());
                changes.push((seat.clone(), SeatState::Held));
            }
            for seat in remove {
                if board.holds(seat, hold, now) {
                    board.free_seat(seat);
                    changes.push((seat.clone(), SeatState::Available));
                }
            }
            let version = board.version + 1;
            (Changed::Done { version }, changes)
        }))
    }

    async fn is_intact(&self, hold: &HoldKeys) -> Result<bool, KvError> {
        Ok(self.with_event(&hold.event_id, |board, now| {
            (board.intact(hold, now), Vec::new())
        }))
    }

    async fn extend(&self, hold: &HoldKeys, ttl: Duration) -> Result<Option<i64>, KvError> {
        Ok(self.with_event(&hold.event_id, |board, now| {
            if !board.intact(hold, now) {
                return (None, Vec::new());
            }
            let until = now.saturating_add(millis(ttl));
            board.extend_to(hold, until);
            (Some(until), Vec::new())
        }))
    }

    async fn claim(
        &self,
        hold: &HoldKeys,
        layout_version: u64,
        at_least: Duration,
    ) -> Result<Claim, KvError> {
        Ok(self.with_event(&hold.event_id, |board, now| {
            if !board.intact(hold, now) {
                return (Claim::Gone, Vec::new());
            }
            if board.layout_version != layout_version {
                return (Claim::StaleLayout, Vec::new());
            }
            let current = board
                .slots
                .get(&(hold.user_id.clone(), hold.slot))
                .map_or(now, |(_, until)| *until);
            let until = current.max(now.saturating_add(millis(at_least)));
            if until > current {
                board.extend_to(hold, until);
            }
            (
                Claim::Claimed {
                    expires_at_ms: until,
                },
                Vec::new(),
            )
        }))
    }

    async fn layout_version(&self, event_id: &EventId) -> Result<u64, KvError> {
        Ok(self.with_event(event_id, |board, _| (board.layout_version, Vec::new())))
    }

    async fn lock_layout(
        &self,
        event_id: &EventId,
        token: &str,
        ttl: Duration,
    ) -> Result<LayoutLock, KvError> {
        Ok(self.with_event(event_id, |board, now| {
            let answer = if !board.held.is_empty() {
                LayoutLock::SeatsHeld(board.held.len())
            } else if board.layout_locked(now) {
                LayoutLock::Busy
            } else {
                board.layout_lock = Some((token.to_string(), now.saturating_add(millis(ttl))));
                LayoutLock::Locked
            };
            (answer, Vec::new())
        }))
    }

    async fn unlock_layout(&self, event_id: &EventId, token: &str) -> Result<(), KvError> {
        self.with_event(event_id, |board, _| {
            if board.layout_lock.as_ref().is_some_and(|(t, _)| t == token) {
                board.layout_lock = None;
            }
            board.layout_version += 1;
            ((), Vec::new())
        });
        Ok(())
    }

    async fn release(&self, hold: &HoldKeys) -> Result<(), KvError> {
        self.with_event(&hold.event_id, |board, now| {
            let freed = board.free(hold, now);
            (
                (),
                freed
                    .into_iter()
                    .map(|s| (s, SeatState::Available))
                    .collect(),
            )
        });
        Ok(())
    }

    async fn sell(&self, hold: &HoldKeys, order_id: &OrderId) -> Result<(), KvError> {
        self.with_event(&hold.event_id, |board, now| {
            board.free(hold, now);
            let changes = hold
                .seat_ids
                .iter()
                .filter(|seat| board.record_sale(seat, order_id, true))
                .map(|s| (s.clone(), SeatState::Sold))
                .collect();
            ((), changes)
        });
        Ok(())
    }

    async fn mark_sold(&self, event_id: &EventId, sold: &SoldSeats) -> Result<(), KvError> {
        self.with_event(event_id, |board, _| {
            let changes = sold
                .iter()
                .filter(|(seat, order)| board.record_sale(seat, order, false))
                .map(|(seat, _)| (seat.clone(), SeatState::Sold))
                .collect();
            ((), changes)
        });
        Ok(())
    }

    async fn unsell(
        &self,
        event_id: &EventId,
        order_id: &OrderId,
        seat_ids: &[SeatId],
    ) -> Result<(), KvError> {
        self.with_event(event_id, |board, _| {
            let mut changes = Vec::new();
            for seat in seat_ids {
                board.unsold.insert((seat.clone(), order_id.clone()));
                if board.sold.get(seat).is_some_and(|order| order == order_id) {
                    board.sold.remove(seat);
                    changes.push((seat.clone(), SeatState::Available));
                }
            }
            ((), changes)
        });
        Ok(())
    }

    async fn load_sold(&self, event_id: &EventId, sold: &SoldSeats) -> Result<(), KvError> {
        self.with_event(event_id, |board, _| {
            for (seat, order) in sold {
                board.record_sale(seat, order, false);
            }
            board.sold_known = true;
            // Loaded without announcing each seat: the mask is rebuilt when next used.
            board.venue_mask = None;
            ((), Vec::new())
        });
        Ok(())
    }

    async fn snapshot(&self, event_id: &EventId) -> Result<Option<Snapshot>, KvError> {
        Ok(self.with_event(event_id, |board, _| {
            let snapshot = board.sold_known.then(|| Snapshot {
                version: board.version,
                held: board.held.keys().cloned().collect(),
                sold: board.sold.keys().cloned().collect(),
            });
            (snapshot, Vec::new())
        }))
    }

    async fn version(&self, event_id: &EventId) -> Result<u64, KvError> {
        Ok(self.with_event(event_id, |board, _| (board.version, Vec::new())))
    }

    async fn sweep(&self, event_id: &EventId) -> Result<(), KvError> {
        self.with_event(event_id, |_, _| ((), Vec::new()));
        Ok(())
    }

    fn changes(&self) -> broadcast::Receiver<Arc<SeatNews>> {
        self.changes.subscribe()
    }

    fn expirations(&self) -> broadcast::Receiver<ExpiredHold> {
        self.expirations.subscribe()
    }
}
