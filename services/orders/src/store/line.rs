//! An event's waitlist as a line that counts a place without reading the queue.
//!
//! Each entry gets a sequence number when it joins (1, 2, 3… per event, never reused), and the
//! store keeps, beside the entries, how many entries each *block* of sequence numbers holds:
//! blocks of 256 numbers (level 1), of 256 such blocks (level 2), and so on up to level
//! [`LEVELS`]. The entries before sequence number `s` are then the entries of at most 255
//! numbers just before `s` in its level-1 block, plus at most 255 level-1 blocks before it in
//! its level-2 block, and so on ([`ranges_before`]): a place is counted from at most
//! `255 × (LEVELS + 1)` index entries whatever the length of the queue, and a join or a leave
//! changes one count per level ([`blocks_of`]). Both adapters keep the counts in the same
//! transaction as the entry.

use std::collections::{BTreeSet, HashMap};

/// Sequence numbers per block, as a power of two. The SQLite migration that numbered the
/// existing entries built their blocks with these values: changing them needs a migration.
const FANOUT_BITS: u32 = 8;
const FANOUT: u64 = 1 << FANOUT_BITS;

/// Levels of block counts above the entries (level 0). The top level is summed whole, so
/// sequence numbers up to `FANOUT^(LEVELS + 1)` (2^40) are counted in bounded work.
pub const LEVELS: u32 = 4;

/// The counts to add up for the number of entries before sequence number `seq`: each is
/// `(level, first, end)`, the units `first..end` of `level` (level 0: sequence numbers of
/// entries; level `l`: blocks of `FANOUT^l` numbers). Together they cover `0..seq` once.
pub fn ranges_before(seq: u64) -> Vec<(u32, u64, u64)> {
    (0..=LEVELS)
        .filter_map(|level| {
            let end = seq >> (FANOUT_BITS * level);
            let first = if level == LEVELS {
                0
            } else {
                end & !(FANOUT - 1)
            };
            (first < end).then_some((level, first, end))
        })
        .collect()
}

/// The block holding `seq` at each level above the entries: the counts its join increments
/// and its leave decrements.
pub fn blocks_of(seq: u64) -> impl Iterator<Item = (u32, u64)> {
    (1..=LEVELS).map(move |level| (level, seq >> (FANOUT_BITS * level)))
}

/// A line of sequence numbers counted in memory the way the adapters count it in their stores:
/// the in-process admission queue's line, and the reference the block counts are tested by.
#[derive(Debug, Default)]
pub struct CountedLine {
    entries: BTreeSet<u64>,
    blocks: HashMap<(u32, u64), u64>,
}

impl CountedLine {
    pub fn join(&mut self, seq: u64) {
        if self.entries.insert(seq) {
            for block in blocks_of(seq) {
                *self.blocks.entry(block).or_default() += 1;
            }
        }
    }

    pub fn leave(&mut self, seq: u64) {
        if self.entries.remove(&seq) {
            for block in blocks_of(seq) {
                if let Some(count) = self.blocks.get_mut(&block) {
                    *count -= 1;
                }
            }
        }
    }

    /// How many entries come before `seq`, in bounded work.
    pub fn before(&self, seq: u64) -> u64 {
        ranges_before(seq)
            .into_iter()
            .map(|(level, first, end)| match level {
                0 => self.entries.range(first..end).count() as u64,
                _ => (first..end)
                    .map(|block| self.blocks.get(&(level, block)).copied().unwrap_or(0))
                    .sum(),
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranges_cover_everything_before_once() {
        for seq in [
            0,
            1,
            255,
            256,
            257,
            65_535,
            65_536,
            70_000,
            1 << 33,
            (1 << 40) - 1,
        ] {
            let ranges = ranges_before(seq);
            let covered: u64 = ranges
                .iter()
                .map(|(level, first, end)| (end - first) << (FANOUT_BITS * level))
                .sum();
            assert_eq!(covered, seq, "{seq}: {ranges:?}");
            assert!(
                ranges.iter().all(|(_, first, end)| end - first < FANOUT),
                "{seq}: bounded work {ranges:?}"
            );
        }
    }

    /// Against a brute-force count, over joins and leaves anywhere in a long line.
    #[test]
    fn places_counted_from_blocks_match_a_brute_force_count() {
        let mut line = CountedLine::default();
        let mut rng = fastrand::Rng::with_seed(7);
        for seq in 1..=100_000 {
            line.join(seq);
        }
        for _ in 0..20_000 {
            line.leave(rng.u64(1..=100_000));
        }
        for _ in 0..300 {
            let seq = rng.u64(1..=100_001);
            let expected = line.entries.range(..seq).count() as u64;
            assert_eq!(line.before(seq), expected, "{seq}");
        }
    }
}
