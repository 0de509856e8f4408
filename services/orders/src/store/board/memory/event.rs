//! One event's seats on the in-process board: who holds which seat until when, the holders'
//! slots, what is sold, and the expiry order that makes a sweep cost only what expired.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::domain::ids::{HoldId, OrderId, SeatId};
use crate::domain::seat::VenuePlan;
use crate::store::SoldSeats;
use crate::store::board::taken::TakenSeats;
use crate::store::board::{HoldKeys, SeatState, first_version};

/// A held seat: whose, and until when.
#[derive(Debug, Clone)]
pub(super) struct HeldSeat {
    pub(super) hold_id: HoldId,
    pub(super) user_id: String,
    pub(super) expires_at_ms: i64,
}

pub(super) type SlotKey = (String, usize);

#[derive(Debug)]
pub(super) struct EventBoard {
    pub(super) version: u64,
    pub(super) held: HashMap<SeatId, HeldSeat>,
    /// (expiry, seat) of every held seat.
    pub(super) held_by_expiry: BTreeSet<(i64, SeatId)>,
    /// Sold seat → the order that bought it.
    pub(super) sold: SoldSeats,
    /// (seat, order) of every sale that was cancelled: never recorded again.
    pub(super) unsold: HashSet<(SeatId, OrderId)>,
    pub(super) sold_known: bool,
    /// (user, slot) → (hold id, expiry)
    pub(super) slots: HashMap<SlotKey, (HoldId, i64)>,
    /// (expiry, slot) of every taken slot.
    pub(super) slots_by_expiry: BTreeSet<(i64, SlotKey)>,
    pub(super) layout_version: u64,
    /// (token, expiry) of the layout lock.
    pub(super) layout_lock: Option<(String, i64)>,
    /// For best available on a venue: which of its seats are taken, kept current by every
    /// change (see [`EventBoard::note`]).
    pub(super) venue_mask: Option<TakenSeats>,
}

impl EventBoard {
    pub(super) fn new() -> Self {
        Self {
            version: first_version(),
            held: HashMap::new(),
            held_by_expiry: BTreeSet::new(),
            sold: SoldSeats::new(),
            unsold: HashSet::new(),
            sold_known: false,
            slots: HashMap::new(),
            slots_by_expiry: BTreeSet::new(),
            layout_version: 0,
            layout_lock: None,
            venue_mask: None,
        }
    }

    /// The taken seats of `plan`: built from the maps on first use (and after sold seats
    /// were loaded behind its back), then kept by [`EventBoard::note`].
    pub(super) fn venue_mask(&mut self, plan: &Arc<VenuePlan>) -> &TakenSeats {
        let mask = match self.venue_mask.take() {
            Some(mask) if Arc::ptr_eq(&mask.plan, plan) => mask,
            _ => TakenSeats::new(plan, |id| {
                self.held.contains_key(id) || self.sold.contains_key(id)
            }),
        };
        self.venue_mask.insert(mask)
    }

    /// Keeps the venue mask in step with `changes`.
    pub(super) fn note(&mut self, changes: &[(SeatId, SeatState)]) {
        if let Some(mask) = &mut self.venue_mask {
            for (seat, state) in changes {
                mask.set_id(seat, *state != SeatState::Available);
            }
        }
    }

    pub(super) fn layout_locked(&self, now: i64) -> bool {
        self.layout_lock
            .as_ref()
            .is_some_and(|(_, until)| *until > now)
    }

    /// Whether the slot and every seat of the hold carry its id.
    pub(super) fn intact(&self, hold: &HoldKeys, now: i64) -> bool {
        hold.seat_ids.iter().all(|s| self.holds(s, hold, now)) && self.holds_slot(hold, now)
    }

    /// Makes the hold's seats and slot last until `until`.
    pub(super) fn extend_to(&mut self, hold: &HoldKeys, until: i64) {
        for seat in &hold.seat_ids {
            if let Some(mut held) = self.held.get(seat).cloned() {
                held.expires_at_ms = until;
                self.hold_seat(seat, held);
            }
        }
        self.take_slot((hold.user_id.clone(), hold.slot), &hold.hold_id, until);
    }

    pub(super) fn hold_seat(&mut self, seat: &SeatId, held: HeldSeat) {
        self.held_by_expiry
            .insert((held.expires_at_ms, seat.clone()));
        if let Some(old) = self.held.insert(seat.clone(), held) {
            self.held_by_expiry
                .remove(&(old.expires_at_ms, seat.clone()));
        }
    }

    pub(super) fn free_seat(&mut self, seat: &SeatId) {
        if let Some(old) = self.held.remove(seat) {
            self.held_by_expiry
                .remove(&(old.expires_at_ms, seat.clone()));
        }
    }

    pub(super) fn take_slot(&mut self, slot: SlotKey, hold_id: &HoldId, until: i64) {
        self.slots_by_expiry.insert((until, slot.clone()));
        if let Some((_, old)) = self.slots.insert(slot.clone(), (hold_id.clone(), until)) {
            self.slots_by_expiry.remove(&(old, slot));
        }
    }

    pub(super) fn free_slot(&mut self, slot: &SlotKey) {
        if let Some((_, until)) = self.slots.remove(slot) {
            self.slots_by_expiry.remove(&(until, slot.clone()));
        }
    }

    pub(super) fn holds(&self, seat: &SeatId, hold: &HoldKeys, now: i64) -> bool {
        self.held
            .get(seat)
            .is_some_and(|h| h.hold_id == hold.hold_id && h.expires_at_ms > now)
    }

    pub(super) fn holds_slot(&self, hold: &HoldKeys, now: i64) -> bool {
        self.slots
            .get(&(hold.user_id.clone(), hold.slot))
            .is_some_and(|(id, until)| *id == hold.hold_id && *until > now)
    }

    /// Frees the seats and slot still carrying the hold; answers the seats freed.
    /// Records `seat` as sold to `order` unless that sale was cancelled, or (unless
    /// `overwrite`: a purchase that just committed) the seat is recorded already; whether the
    /// seat became sold.
    pub(super) fn record_sale(&mut self, seat: &SeatId, order: &OrderId, overwrite: bool) -> bool {
        if self.unsold.contains(&(seat.clone(), order.clone())) {
            return false;
        }
        let recorded = self.sold.contains_key(seat);
        if !recorded || overwrite {
            self.sold.insert(seat.clone(), order.clone());
        }
        !recorded
    }

    pub(super) fn free(&mut self, hold: &HoldKeys, now: i64) -> Vec<SeatId> {
        let freed: Vec<SeatId> = hold
            .seat_ids
            .iter()
            .filter(|seat| self.holds(seat, hold, now))
            .cloned()
            .collect();
        for seat in &freed {
            self.free_seat(seat);
        }
        if self.holds_slot(hold, now) {
            self.free_slot(&(hold.user_id.clone(), hold.slot));
        }
        freed
    }
}
