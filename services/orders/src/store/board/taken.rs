//! Which seats of a venue are taken (held, sold or blocked), by seat index, with the free
//! seats of each block counted: what best available searches on either board, kept current
//! change by change, so that full blocks are skipped without looking at their seats.

use std::sync::Arc;

use crate::domain::seat::VenuePlan;

#[derive(Debug)]
pub struct TakenSeats {
    pub plan: Arc<VenuePlan>,
    taken: Vec<bool>,
    free_in_block: Vec<usize>,
}

impl TakenSeats {
    /// The seats of `plan`, each taken when `is_taken` says so.
    pub fn new(plan: &Arc<VenuePlan>, is_taken: impl Fn(&str) -> bool) -> Self {
        let venue = &plan.venue;
        let mut seats = Self {
            plan: plan.clone(),
            taken: vec![false; venue.seats.len()],
            free_in_block: venue.blocks.iter().map(|b| b.end - b.start).collect(),
        };
        for (i, seat) in venue.seats.iter().enumerate() {
            seats.set(i, is_taken(&seat.id));
        }
        seats
    }

    pub fn is_free(&self, seat: usize) -> bool {
        !self.taken[seat]
    }

    /// Whether block `block` has at least `count` free seats.
    pub fn has_room(&self, block: usize, count: usize) -> bool {
        self.free_in_block[block] >= count
    }

    pub fn set(&mut self, seat: usize, taken: bool) {
        if self.taken[seat] != taken {
            self.taken[seat] = taken;
            let block = &mut self.free_in_block[self.plan.venue.seats[seat].block];
            *block = if taken { *block - 1 } else { *block + 1 };
        }
    }

    /// Marks the seat with this id (if it is one of the venue's).
    pub fn set_id(&mut self, seat: &str, taken: bool) {
        if let Some(i) = self.plan.index(seat) {
            self.set(i, taken);
        }
    }
}
