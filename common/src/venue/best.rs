//! Best available: the best-ranked block of `count` seats side by side, in one pass over the
//! venue's seats (they are in block order), so that a seat board can run it inside the one
//! critical section or script that takes the seats.
//!
//! A placement is `count` consecutive seats of one block (a run of a row between aisles), each
//! free and matching the request. Its rank is the sum of its seats' ranks (lower is better).
//! Among placements of the best rank, one that strands no single free seat between itself and a
//! taken seat or the block's end is preferred; then the first in venue order. With `allow_split`
//! and no placement in one block, the best-ranked matching free seats are given, split.

use std::ops::Range;

use super::{Block, Venue, VenueSeat};

/// What a buyer asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BestRequest {
    pub count: usize,
    /// Only seats of this category (an index into [`Venue::categories`]).
    pub category: Option<usize>,
    /// Only seats of this section (an index into [`Venue::sections`]).
    pub section: Option<usize>,
    /// Wheelchair spaces and their companion seats are given only when asked for; then the
    /// placement must hold at least one wheelchair space.
    pub accessible: bool,
    pub allow_split: bool,
}

/// The seats given, as indices into [`Venue::seats`], best first in venue order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub seats: Vec<usize>,
    /// The seats are not side by side in one block (only with `allow_split`).
    pub split: bool,
}

impl BestRequest {
    /// Whether `seat` may be given for this request (free or not).
    pub fn matches(&self, seat: &VenueSeat) -> bool {
        self.category.is_none_or(|c| seat.category == c)
            && self.section.is_none_or(|s| seat.section == s)
            && (self.accessible || (!seat.wheelchair && seat.companion_of.is_none()))
    }
}

/// The best grant for `request` where `free(i)` says whether seat `i` is free (neither held,
/// sold nor blocked); `None` when nothing fits.
pub fn best_available(
    venue: &Venue,
    free: impl Fn(usize) -> bool,
    request: &BestRequest,
) -> Option<Grant> {
    best_available_where(venue, free, |_| true, request)
}

/// [`best_available`] for a caller that knows which blocks may have room: `may_fit(b)` false
/// means block `b` has fewer than `request.count` free seats (a board keeping free counts per
/// block skips full blocks without looking at their seats).
pub fn best_available_where(
    venue: &Venue,
    free: impl Fn(usize) -> bool,
    may_fit: impl Fn(usize) -> bool,
    request: &BestRequest,
) -> Option<Grant> {
    let n = request.count;
    if n == 0 || n > venue.seats.len() {
        return None;
    }
    let mut best: Option<Placement> = None;
    each_block_best(venue, &free, &may_fit, request, |placement, _| {
        if best.is_none_or(|b| placement < b) {
            best = Some(placement);
        }
        true
    });
    if let Some((_, _, first)) = best {
        return Some(Grant {
            seats: (first..first + n).collect(),
            split: false,
        });
    }
    if !request.allow_split {
        return None;
    }
    let seats = &venue.seats;
    let mut usable: Vec<usize> = (0..seats.len())
        .filter(|&i| free(i) && request.matches(&seats[i]))
        .collect();
    if usable.len() < n {
        return None;
    }
    usable.sort_by_key(|&i| (seats[i].rank, i));
    usable.truncate(n);
    usable.sort_unstable();
    Some(Grant {
        seats: usable,
        split: true,
    })
}

/// The blocks (seat index ranges, in venue order) holding the `limit` best placements for
/// `request`, at most one per block: where a seat board that cannot search the whole venue in
/// its atomic step (a Redis script) searches, `free` being a recent view of the seats and
/// `may_fit` as for [`best_available_where`]. Empty when no block has room.
pub fn best_blocks(
    venue: &Venue,
    free: impl Fn(usize) -> bool,
    may_fit: impl Fn(usize) -> bool,
    request: &BestRequest,
    limit: usize,
) -> Vec<Range<usize>> {
    if request.count == 0 || limit == 0 {
        return Vec::new();
    }
    let mut found: Vec<(Placement, Range<usize>)> = Vec::new();
    each_block_best(venue, &free, &may_fit, request, |placement, block| {
        found.push((placement, block));
        found.len() >= limit
    });
    found.sort_unstable_by_key(|(placement, _)| *placement);
    found.truncate(limit);
    let mut blocks: Vec<Range<usize>> = found.into_iter().map(|(_, block)| block).collect();
    blocks.sort_unstable_by_key(|block| block.start);
    blocks
}

/// (rank, strands a seat, first seat): lower is better.
type Placement = (u64, bool, usize);

/// Calls `found` with the best placement of each block that has one, and the block's range,
/// best-ranked rows first; once `found` says it has enough, only the rest of that row rank is
/// looked at (a placement in a later row rank always ranks worse: the row's rank is in the
/// high bits of every seat's, and the distances below it add up to less than one step of it).
fn each_block_best(
    venue: &Venue,
    free: &impl Fn(usize) -> bool,
    may_fit: &impl Fn(usize) -> bool,
    request: &BestRequest,
    mut found: impl FnMut(Placement, Range<usize>) -> bool,
) {
    let n = request.count;
    let seats = &venue.seats;
    let mut enough_at: Option<u64> = None;
    for &b in &venue.blocks_by_rank {
        let Block {
            start,
            end,
            row_rank,
        } = venue.blocks[b];
        if enough_at.is_some_and(|rank| rank != row_rank) {
            return;
        }
        if end - start < n || !may_fit(b) {
            continue;
        }
        // Slide a window of `n` over the block, keeping the sum of ranks, how many of its
        // seats may be given, and how many are wheelchair spaces.
        let (mut rank, mut usable, mut spaces) = (0u64, 0usize, 0usize);
        let mut best: Option<Placement> = None;
        for i in start..end {
            let usable_seat = |j: usize| free(j) && request.matches(&seats[j]);
            rank += seats[i].rank;
            usable += usize::from(usable_seat(i));
            spaces += usize::from(seats[i].wheelchair);
            if i >= start + n {
                let out = i - n;
                rank -= seats[out].rank;
                usable -= usize::from(usable_seat(out));
                spaces -= usize::from(seats[out].wheelchair);
            }
            if i + 1 < start + n || usable < n || (request.accessible && spaces == 0) {
                continue;
            }
            let first = i + 1 - n;
            let candidate = (rank, strands(free, first, i, start, end), first);
            if best.is_none_or(|b| candidate < b) {
                best = Some(candidate);
            }
        }
        if let Some(placement) = best
            && found(placement, start..end)
        {
            enough_at = Some(row_rank);
        }
    }
}

/// Whether taking seats `first..=last` of the block `start..end` leaves a single free seat
/// between them and a taken seat or the block's end, on either side.
fn strands(
    free: &impl Fn(usize) -> bool,
    first: usize,
    last: usize,
    start: usize,
    end: usize,
) -> bool {
    let alone = |seat: usize, beyond: Option<usize>| free(seat) && beyond.is_none_or(|b| !free(b));
    let left = first > start && alone(first - 1, (first - 1 > start).then(|| first - 2));
    let right = last + 1 < end && alone(last + 1, (last + 2 < end).then_some(last + 2));
    left || right
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::json;

    use super::*;
    use crate::venue::VenueSpec;

    fn venue(rows: &[&str]) -> Venue {
        let rows: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(r, seats)| json!({"label": format!("R{r}"), "seats": seats}))
            .collect();
        let spec: VenueSpec = serde_json::from_value(json!({
            "categories": [{"key": "a", "name": "A", "price": 10}, {"key": "b", "name": "B", "price": 5}],
            "sections": [{"key": "s", "name": "S", "category": "a", "rows": rows}]
        }))
        .unwrap();
        spec.expand().unwrap()
    }

    fn ids(venue: &Venue, grant: &Grant) -> Vec<String> {
        grant
            .seats
            .iter()
            .map(|&i| venue.seats[i].id.clone())
            .collect()
    }

    fn ask(count: usize) -> BestRequest {
        BestRequest {
            count,
            ..BestRequest::default()
        }
    }

    #[test]
    fn the_middle_of_the_front_row_goes_first_and_blocks_never_span_an_aisle() {
        let v = venue(&["1-4 | 5-8", "1-8"]);
        let grant = best_available(&v, |_| true, &ask(2)).unwrap();
        assert_eq!(ids(&v, &grant), ["s-R0-3", "s-R0-4"]);
        // Four side by side exist in the front row only across the aisle: the next row's middle.
        let grant = best_available(&v, |_| true, &ask(5)).unwrap();
        assert_eq!(
            ids(&v, &grant),
            ["s-R1-2", "s-R1-3", "s-R1-4", "s-R1-5", "s-R1-6"]
        );
        assert!(!grant.split);
    }

    #[test]
    fn of_two_placements_of_equal_rank_the_one_stranding_no_seat_wins() {
        // Seats 1-5, 3 and 5 taken: seats 2 and 4 are equally near the middle; taking 2 would
        // leave 1 alone at the row's end, taking 4 leaves nothing stranded.
        let v = venue(&["1-5"]);
        let taken: HashSet<usize> = [2, 4].into();
        let grant = best_available(&v, |i| !taken.contains(&i), &ask(1)).unwrap();
        assert_eq!(ids(&v, &grant), ["s-R0-4"]);
        // The best rank wins even when it strands a seat: 1-8 with 1, 2 and 8 taken gives 4+5.
        let v = venue(&["1-8"]);
        let taken: HashSet<usize> = [0, 1, 7].into();
        let grant = best_available(&v, |i| !taken.contains(&i), &ask(2)).unwrap();
        assert_eq!(ids(&v, &grant), ["s-R0-4", "s-R0-5"]);
    }

    #[test]
    fn wheelchair_spaces_and_companions_only_when_asked_for() {
        let spec: VenueSpec = serde_json::from_value(json!({
            "categories": [{"key": "a", "name": "A", "price": 10}],
            "sections": [{"key": "s", "name": "S", "category": "a", "rows": [
                {"label": "A", "seats": "1-4", "overrides": [
                    {"seat": "2", "wheelchair": true}, {"seat": "3", "companionOf": "2"}
                ]}
            ]}]
        }))
        .unwrap();
        let v = spec.expand().unwrap();
        assert_eq!(best_available(&v, |_| true, &ask(2)), None);
        let grant = best_available(
            &v,
            |_| true,
            &BestRequest {
                accessible: true,
                ..ask(2)
            },
        )
        .unwrap();
        assert_eq!(ids(&v, &grant), ["s-A-2", "s-A-3"]);
    }

    #[test]
    fn a_split_only_when_allowed_and_said() {
        let v = venue(&["1-2", "1-2"]);
        let taken: HashSet<usize> = [1, 2].into();
        let free = |i| !taken.contains(&i);
        assert_eq!(best_available(&v, free, &ask(2)), None);
        let grant = best_available(
            &v,
            free,
            &BestRequest {
                allow_split: true,
                ..ask(2)
            },
        )
        .unwrap();
        assert!(grant.split);
        assert_eq!(ids(&v, &grant), ["s-R0-1", "s-R1-2"]);
    }

    /// Every placement of `count` usable seats side by side, found without the sliding window:
    /// each seat and the `count - 1` after it.
    fn all_placements(
        venue: &Venue,
        free: &dyn Fn(usize) -> bool,
        request: &BestRequest,
    ) -> Vec<Vec<usize>> {
        let seats = &venue.seats;
        (0..seats.len())
            .filter_map(|first| {
                let chosen: Vec<usize> = (first..first + request.count).collect();
                let fits = chosen.iter().all(|&i| {
                    i < seats.len()
                        && seats[i].block == seats[first].block
                        && free(i)
                        && request.matches(&seats[i])
                }) && (!request.accessible
                    || chosen.iter().any(|&i| seats[i].wheelchair));
                fits.then_some(chosen)
            })
            .collect()
    }

    /// Whether taking `chosen` leaves a free seat alone beside it in its block.
    fn strands_any(venue: &Venue, free: &dyn Fn(usize) -> bool, chosen: &[usize]) -> bool {
        let seats = &venue.seats;
        let in_block = |i: isize| {
            usize::try_from(i)
                .ok()
                .filter(|&i| i < seats.len() && seats[i].block == seats[chosen[0]].block)
        };
        let free_at = |i: isize| in_block(i).is_some_and(free);
        let (first, last) = (chosen[0] as isize, *chosen.last().unwrap() as isize);
        (free_at(first - 1) && !free_at(first - 2)) || (free_at(last + 1) && !free_at(last + 2))
    }

    /// On small random venues filled at random, every grant has the best rank of all placements
    /// and strands no seat when a placement of that rank does not; grants taken one after
    /// another never overlap.
    #[test]
    fn grants_agree_with_a_brute_force_oracle() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..300 {
            let rows: Vec<String> = (0..rng.usize(1..4))
                .map(|_| {
                    let a = rng.usize(1..6);
                    let b = a + rng.usize(1..6);
                    if rng.bool() {
                        format!("1-{a} | {}-{b}", a + 1)
                    } else {
                        format!("1-{b}")
                    }
                })
                .collect();
            // Rows of equal priority (equal rank) half the time.
            let rows: Vec<_> = rows
                .iter()
                .enumerate()
                .map(|(r, seats)| {
                    let mut row = json!({"label": format!("R{r}"), "seats": seats});
                    if rng.bool() {
                        row["priority"] = json!(rng.u32(0..2));
                    }
                    row
                })
                .collect();
            let spec: VenueSpec = serde_json::from_value(json!({
                "categories": [{"key": "a", "name": "A", "price": 10}],
                "sections": [{"key": "s", "name": "S", "category": "a", "rows": rows}]
            }))
            .unwrap();
            let v = spec.expand().unwrap();
            let mut taken: HashSet<usize> =
                (0..v.seats.len()).filter(|_| rng.u8(0..4) == 0).collect();
            loop {
                let request = ask(rng.usize(1..4));
                let free = |i: usize| !taken.contains(&i);
                let placements = all_placements(&v, &free, &request);
                let grant = best_available(&v, free, &request);
                let Some(grant) = grant else {
                    assert!(placements.is_empty(), "missed {placements:?}");
                    break;
                };
                let rank = |seats: &[usize]| seats.iter().map(|&i| v.seats[i].rank).sum::<u64>();
                let best = placements.iter().map(|p| rank(p)).min().unwrap();
                assert_eq!(rank(&grant.seats), best);
                let clean_exists = placements
                    .iter()
                    .any(|p| rank(p) == best && !strands_any(&v, &free, p));
                if clean_exists {
                    assert!(
                        !strands_any(&v, &free, &grant.seats),
                        "{grant:?} strands a seat"
                    );
                }
                for seat in &grant.seats {
                    assert!(taken.insert(*seat), "seat {seat} given twice");
                }
            }
        }
    }
}
