//! Seats and seat maps. A seat id is `R<row>-S<number>`, both 1-based, within the event's layout.

use serde::Deserialize;

use crate::domain::ids::{EventId, SeatId};

/// What orders needs to know about an event: its layout, its price, who runs it and when.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    #[serde(rename = "_id")]
    pub event_id: EventId,
    pub rows: u32,
    pub seats_per_row: u32,
    /// Filled from the event's `price` (a decimal JSON number) by the layout source.
    #[serde(skip)]
    pub price_minor: i64,
    pub currency: String,
    /// The seat board's layout version this layout was read at (see
    /// [`crate::store::board`]); filled by the layout source.
    #[serde(skip)]
    pub version: u64,
    /// The organizer who owns the event (organizers see its sales and cancel its orders).
    #[serde(default)]
    pub organizer_id: Option<String>,
    /// When the event starts (Unix ms); filled from the event's `date` by the layout source.
    #[serde(skip)]
    pub starts_at_ms: Option<i64>,
}

/// A seat's place in the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seat {
    pub row: u32,
    pub number: u32,
}

impl Seat {
    /// Parses `R3-S12`; `None` for anything else.
    pub fn parse(id: &str) -> Option<Self> {
        let (row, number) = id.strip_prefix('R')?.split_once("-S")?;
        let digits = |s: &str| {
            !s.is_empty()
                && s.len() <= 4
                && s.bytes().all(|b| b.is_ascii_digit())
                && !s.starts_with('0')
        };
        if !digits(row) || !digits(number) {
            return None;
        }
        Some(Self {
            row: row.parse().ok()?,
            number: number.parse().ok()?,
        })
    }

    pub fn id(&self) -> SeatId {
        SeatId::named(&format!("R{}-S{}", self.row, self.number))
    }
}

impl Layout {
    pub fn contains(&self, seat: Seat) -> bool {
        (1..=self.rows).contains(&seat.row) && (1..=self.seats_per_row).contains(&seat.number)
    }

    /// Every seat, row by row.
    pub fn seats(&self) -> impl Iterator<Item = Seat> + '_ {
        (1..=self.rows)
            .flat_map(move |row| (1..=self.seats_per_row).map(move |number| Seat { row, number }))
    }

    pub fn capacity(&self) -> usize {
        usize::try_from(self.rows * self.seats_per_row).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_ids_parse_strictly() {
        assert_eq!(Seat::parse("R1-S2"), Some(Seat { row: 1, number: 2 }));
        assert_eq!(
            Seat::parse("R12-S200")
                .map(|s| s.id().to_string())
                .as_deref(),
            Some("R12-S200")
        );
        for bad in [
            "",
            "R0-S1",
            "R1-S0",
            "R01-S1",
            "r1-s1",
            "R1S1",
            "R1-S",
            "R-S1",
            "R1-S2x",
            "R99999-S1",
        ] {
            assert_eq!(Seat::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn layouts_know_their_seats() {
        let layout = Layout {
            event_id: "e".into(),
            rows: 2,
            seats_per_row: 3,
            price_minor: 100,
            currency: "INR".into(),
            version: 0,
            organizer_id: None,
            starts_at_ms: None,
        };
        let ids: Vec<String> = layout.seats().map(|s| s.id().to_string()).collect();
        assert_eq!(ids, ["R1-S1", "R1-S2", "R1-S3", "R2-S1", "R2-S2", "R2-S3"]);
        assert!(layout.contains(Seat { row: 2, number: 3 }));
        assert!(!layout.contains(Seat { row: 3, number: 1 }));
    }
}
