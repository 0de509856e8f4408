//! The admission queue's rules, free of storage: an event's queue settings, and the pace at
//! which places are let in.
//!
//! Admission is computed from a buyer's place and the time, never handed out one by one: by
//! time `t` the first [`Pace::admitted_by`]`(t)` places are in. Every replica computes the same
//! number from the same stored pace, so admission follows queue order exactly wherever it is
//! asked for. Changing the rate or pausing rebases the pace at that moment, keeping who is in.

use std::time::Duration;

/// How many buyers a minute a queue admits when the organizer does not say: enough buyers of
/// about two seats each for a sale of `seats` seats to be let in over ten minutes, within
/// 60 and 6,000 a minute.
pub fn default_rate_per_minute(seats: usize) -> u32 {
    let per_minute = seats.div_ceil(10 * 2);
    u32::try_from(per_minute)
        .unwrap_or(u32::MAX)
        .clamp(60, 6_000)
}

/// An event's queue as its organizer set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// When admission starts (ms since the epoch).
    pub opens_at_ms: i64,
    /// Buyers let in per minute.
    pub rate_per_minute: u32,
    /// How long an admitted buyer may shop.
    pub window: Duration,
    /// Whether people may join before `opens_at_ms` (they are then shuffled at it).
    pub early_joining: bool,
    /// The proof of work a join must carry: this many leading zero bits (0: none; see
    /// [`proof_holds`]).
    pub proof_bits: u8,
}

/// The most leading zero bits a queue may ask of a join's proof: about 16 million hashes on
/// average, a few seconds in a browser.
pub const MAX_PROOF_BITS: u8 = 24;

/// Whether `nonce` proves work for `user_id` joining `event_id`: SHA-256 of
/// `"{event_id}:{user_id}:{nonce}"` starts with `bits` zero bits. Bound to the person and the
/// event, so one proof buys one place; checked with one hash.
pub fn proof_holds(event_id: &str, user_id: &str, nonce: &str, bits: u8) -> bool {
    use sha2::{Digest, Sha256};
    if bits == 0 {
        return true;
    }
    let digest = Sha256::digest(format!("{event_id}:{user_id}:{nonce}"));
    let mut left = u32::from(bits);
    for byte in digest {
        let zeros = byte.leading_zeros();
        if left <= zeros {
            return true;
        }
        if zeros < 8 {
            return false;
        }
        left -= 8;
    }
    true
}

/// How many places are in: `base_admitted` at `base_at_ms`, then `rate_per_minute` more each
/// minute (0 while paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub base_admitted: u64,
    pub base_at_ms: i64,
    pub rate_per_minute: u32,
}

impl Pace {
    /// The pace of a queue that opens with these settings.
    pub fn opening(settings: &QueueSettings) -> Self {
        Self {
            base_admitted: 0,
            base_at_ms: settings.opens_at_ms,
            rate_per_minute: settings.rate_per_minute,
        }
    }

    /// How many places are in at `now_ms`.
    pub fn admitted_by(&self, now_ms: i64) -> u64 {
        let elapsed = u64::try_from(now_ms - self.base_at_ms).unwrap_or(0);
        let more = u128::from(elapsed) * u128::from(self.rate_per_minute) / 60_000;
        self.base_admitted
            .saturating_add(u64::try_from(more).unwrap_or(u64::MAX))
    }

    /// The pace from `now_ms` on at `rate_per_minute` (0: paused), everyone in staying in.
    pub fn changed(&self, now_ms: i64, rate_per_minute: u32) -> Self {
        let at = now_ms.max(self.base_at_ms);
        Self {
            base_admitted: self.admitted_by(at),
            base_at_ms: at,
            rate_per_minute,
        }
    }

    /// When place `place` (1 is the first) is let in at this pace; `None` while paused and not
    /// in yet.
    pub fn admitted_at(&self, place: u64) -> Option<i64> {
        if place <= self.base_admitted {
            return Some(self.base_at_ms);
        }
        if self.rate_per_minute == 0 {
            return None;
        }
        let ahead = u128::from(place - self.base_admitted) * 60_000;
        let ms = ahead.div_ceil(u128::from(self.rate_per_minute));
        Some(
            self.base_at_ms
                .saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn settings(rate_per_minute: u32) -> QueueSettings {
        QueueSettings {
            opens_at_ms: 1_000_000,
            rate_per_minute,
            window: Duration::from_secs(600),
            early_joining: true,
            proof_bits: 0,
        }
    }

    /// The nonce a client would find: the first counting up from 0.
    fn solve(bits: u8) -> String {
        (0u64..)
            .map(|n| n.to_string())
            .find(|nonce| proof_holds("e1", "u1", nonce, bits))
            .unwrap()
    }

    #[test]
    fn a_proof_counts_leading_zero_bits_of_its_own_person_and_event() {
        assert!(proof_holds("e1", "u1", "anything", 0));
        for bits in [1, 4, 8, 12] {
            let nonce = solve(bits);
            assert!(proof_holds("e1", "u1", &nonce, bits));
            let digest = sha2::Sha256::digest(format!("e1:u1:{nonce}"));
            let zeros: u32 = digest
                .iter()
                .scan(true, |going, byte| {
                    let z = if *going { byte.leading_zeros() } else { 0 };
                    *going = z == 8;
                    Some(z)
                })
                .sum();
            assert!(zeros >= u32::from(bits), "{bits} bits: {zeros}");
        }
        let nonce = solve(12);
        let others = ["u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"];
        assert!(
            others
                .iter()
                .any(|user| !proof_holds("e1", user, &nonce, 12)),
            "another person's proof is not theirs"
        );
    }

    #[test]
    fn places_go_in_at_the_rate_from_the_opening() {
        let pace = Pace::opening(&settings(600));
        assert_eq!(pace.admitted_by(999_999), 0);
        assert_eq!(pace.admitted_by(1_000_000), 0);
        assert_eq!(pace.admitted_by(1_000_099), 0);
        assert_eq!(pace.admitted_by(1_000_100), 1);
        assert_eq!(pace.admitted_by(1_060_000), 600);
        assert_eq!(pace.admitted_at(1), Some(1_000_100));
        assert_eq!(pace.admitted_at(600), Some(1_060_000));
        for place in [1, 7, 599, 600, 601] {
            let at = pace.admitted_at(place).unwrap();
            assert!(pace.admitted_by(at) >= place && pace.admitted_by(at - 1) < place);
        }
    }

    #[test]
    fn a_pause_keeps_who_is_in_and_lets_nobody_else_in() {
        let pace = Pace::opening(&settings(600));
        let paused = pace.changed(1_030_000, 0);
        assert_eq!(paused.admitted_by(1_030_000), 300);
        assert_eq!(paused.admitted_by(9_000_000), 300);
        assert_eq!(paused.admitted_at(300), Some(1_030_000));
        assert_eq!(paused.admitted_at(301), None);
        let resumed = paused.changed(1_100_000, 60);
        assert_eq!(resumed.admitted_by(1_100_000), 300);
        assert_eq!(resumed.admitted_by(1_160_000), 360);
    }

    #[test]
    fn a_rate_change_before_the_opening_takes_effect_at_it() {
        let pace = Pace::opening(&settings(600)).changed(500_000, 60);
        assert_eq!(pace.base_at_ms, 1_000_000);
        assert_eq!(pace.admitted_by(1_060_000), 60);
    }

    #[test]
    fn the_default_rate_lets_a_sale_in_over_about_ten_minutes() {
        assert_eq!(default_rate_per_minute(20_000), 1_000);
        assert_eq!(default_rate_per_minute(100), 60);
        assert_eq!(default_rate_per_minute(10_000_000), 6_000);
    }
}
