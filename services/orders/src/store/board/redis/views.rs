//! What this process knows of the taken seats of each venue event it sold best-available seats
//! of: where [`super::RedisBoard::take_best`] searches, since one script cannot declare a
//! whole venue's keys. A view is read from the board once, then kept current by the changes
//! every replica publishes (applied in version order; a gap, or a lost subscription, makes it
//! stale, and the next search reads the board again) and by this process's own grants. The
//! script checks every seat it gives as it stands, so a view that lags costs a search, never a
//! seat.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use holdfast_common::sync::lock;
use holdfast_common::venue::{
    BestRequest, Grant, best_available, best_available_where, best_blocks,
};

use crate::domain::ids::{EventId, SeatId};
use crate::store::board::taken::TakenSeats;
use crate::store::board::{BestTake, SeatDelta, SeatState, Snapshot};

/// How many blocks (runs of a row between aisles) one best-available script searches.
const REGION_BLOCKS: usize = 4;

/// Which seats of a venue were taken at `version`.
struct View {
    seats: TakenSeats,
    version: u64,
    /// Changes may have been missed: read the board again before trusting it.
    stale: bool,
}

/// The views of this process, by event.
#[derive(Default)]
pub(super) struct Views {
    views: Mutex<HashMap<EventId, View>>,
    reads: Mutex<HashMap<EventId, Arc<Reads>>>,
}

/// The reads of one event's view from the board: one at a time, so that the buyers who all
/// find the view stale at once (an on-sale's first second) wait for one read, not each make
/// their own.
#[derive(Default)]
pub(super) struct Reads {
    pub(super) turn: tokio::sync::Mutex<()>,
    /// How many reads were done.
    pub(super) done: AtomicU64,
}

/// Where to search: runs of seats side by side that were free in the view, and the version of
/// the view they were chosen from.
pub(super) type Region = (Vec<Range<usize>>, u64);

/// The runs of free seats, at least `count` long, of the blocks holding the view's best
/// placements. The script checks every seat it is given as it stands; what it is not given is
/// what the view had taken, which for a seat taken by then is the same answer and for a seat
/// freed since (a release, an expiry) is an offer missed until the change reaches the view.
/// Most of a region in an on-sale is taken already, and the script's cost is per seat.
fn search(view: &View, best: &BestTake) -> Vec<Range<usize>> {
    let seats = &view.seats;
    let count = best.request.count;
    let blocks = best_blocks(
        &best.plan.venue,
        |i| seats.is_free(i),
        |b| seats.has_room(b, count),
        &best.request,
        REGION_BLOCKS,
    );
    blocks
        .into_iter()
        .flat_map(|block| free_runs(block, |i| seats.is_free(i)))
        .filter(|run| run.len() >= count)
        .collect()
}

/// The runs of seats of `block` that are free, in order.
fn free_runs(block: Range<usize>, free: impl Fn(usize) -> bool) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    for i in block.clone() {
        match (free(i), start) {
            (true, None) => start = Some(i),
            (false, Some(from)) => {
                runs.push(from..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        runs.push(from..block.end);
    }
    runs
}

impl Views {
    /// The region to search from the event's view, if there is a current one for its plan.
    pub(super) fn search(&self, event_id: &EventId, best: &BestTake) -> Option<Region> {
        let views = lock(&self.views);
        let view = views
            .get(event_id)
            .filter(|view| !view.stale && Arc::ptr_eq(&view.seats.plan, &best.plan))?;
        Some((search(view, best), view.version))
    }

    /// Keeps `snapshot`, just read from the board, as the event's view; answers the region to
    /// search in it.
    pub(super) fn read(&self, event_id: &EventId, best: &BestTake, snapshot: &Snapshot) -> Region {
        let taken: HashSet<&str> = snapshot
            .held
            .iter()
            .chain(&snapshot.sold)
            .map(SeatId::as_str)
            .collect();
        let view = View {
            seats: TakenSeats::new(&best.plan, |id| taken.contains(id)),
            version: snapshot.version,
            stale: false,
        };
        let region = (search(&view, best), view.version);
        lock(&self.views).insert(event_id.clone(), view);
        region
    }

    /// The reads of the event's view.
    pub(super) fn reads(&self, event_id: &EventId) -> Arc<Reads> {
        lock(&self.reads)
            .entry(event_id.clone())
            .or_default()
            .clone()
    }

    /// The version the event's view is at.
    pub(super) fn version(&self, event_id: &EventId) -> Option<u64> {
        lock(&self.views).get(event_id).map(|view| view.version)
    }

    /// Applies a published change to the event's view, if it follows on from it.
    pub(super) fn follow(&self, delta: &SeatDelta) {
        let mut views = lock(&self.views);
        let Some(view) = views.get_mut(&delta.event_id) else {
            return;
        };
        if delta.version <= view.version {
            return;
        }
        if delta.version != view.version + 1 {
            view.stale = true;
            return;
        }
        for (seat, state) in &delta.changes {
            view.seats.set_id(seat, *state != SeatState::Available);
        }
        view.version = delta.version;
    }

    /// Changes may have been lost: every view is read again before it is used.
    pub(super) fn missed_changes(&self) {
        for view in lock(&self.views).values_mut() {
            view.stale = true;
        }
    }

    /// Records this process's grant of `seats`, which made the event's version `version`;
    /// `current` when the view was at the version just before it.
    pub(super) fn granted(
        &self,
        event_id: &EventId,
        best: &BestTake,
        seats: &[SeatId],
        current: bool,
        version: u64,
    ) {
        let mut views = lock(&self.views);
        let Some(view) = views.get_mut(event_id) else {
            return;
        };
        if !Arc::ptr_eq(&view.seats.plan, &best.plan) {
            return;
        }
        for seat in seats {
            view.seats.set_id(seat, true);
        }
        // The published change of this grant may have been applied already, and later ones.
        if current {
            view.version = view.version.max(version);
        }
    }

    /// The seats best available gives each of `takes` in turn in the event's view, each counting
    /// the seats given before it as taken, and the version of the view; `None` without a
    /// current view. A take that nothing fits side by side in one row, or that was planned
    /// on another layout, is given nothing (`None`): it is searched for on the board.
    pub(super) fn choose(
        &self,
        event_id: &EventId,
        takes: &[&BestTake],
    ) -> Option<(u64, Vec<Option<Vec<usize>>>)> {
        let views = lock(&self.views);
        let view = views.get(event_id).filter(|view| !view.stale)?;
        let seats = &view.seats;
        let mut given: HashSet<usize> = HashSet::new();
        let choices = takes
            .iter()
            .map(|best| {
                if !Arc::ptr_eq(&seats.plan, &best.plan) {
                    return None;
                }
                let grant = best_available_where(
                    &best.plan.venue,
                    |i| seats.is_free(i) && !given.contains(&i),
                    // Counts of the view, not of what this batch gave: "may fit" may say more.
                    |b| seats.has_room(b, best.request.count),
                    &BestRequest {
                        allow_split: false,
                        ..best.request.clone()
                    },
                )?;
                given.extend(&grant.seats);
                Some(grant.seats)
            })
            .collect();
        Some((view.version, choices))
    }

    /// The best seats for `best` in the event's view, split if need be.
    pub(super) fn split(&self, event_id: &EventId, best: &BestTake) -> Option<Grant> {
        let views = lock(&self.views);
        let view = views.get(event_id)?;
        best_available(&best.plan.venue, |i| view.seats.is_free(i), &best.request)
    }

    /// The event's view may be wrong: read the board before it is used again.
    pub(super) fn distrust(&self, event_id: &EventId) {
        if let Some(view) = lock(&self.views).get_mut(event_id) {
            view.stale = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::free_runs;

    #[test]
    fn free_runs_split_a_block_at_its_taken_seats() {
        let taken = [12, 13, 17];
        let free = |i: usize| !taken.contains(&i);
        assert_eq!(free_runs(10..20, free), [10..12, 14..17, 18..20]);
        assert!(free_runs(12..14, free).is_empty());
        let all_free = 0..3;
        assert_eq!(free_runs(all_free.clone(), free), vec![all_free]);
    }
}
