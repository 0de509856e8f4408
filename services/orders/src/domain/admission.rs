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

    fn settings(rate_per_minute: u32) -> QueueSettings {
        QueueSettings {
            opens_at_ms: 1_000_000,
            rate_per_minute,
            window: Duration::from_secs(600),
            early_joining: true,
        }
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
