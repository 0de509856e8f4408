//! Seats and layouts. An event's seats are a grid, `rows` × `seatsPerRow` at one price, whose
//! seat ids are `R<row>-S<number>` (both 1-based), or a venue (see [`holdfast_common::venue`]):
//! sections, labelled rows and price categories, with seat ids like `stalls-A-12`.

use std::collections::HashMap;
use std::sync::Arc;

use holdfast_common::messages::{EventSummary, SeatLabel};
use holdfast_common::venue::{BestRequest, Category, Venue, VenueSeat, best_available};
use serde::Deserialize;

use crate::domain::ids::{EventId, SeatId};

/// What orders needs to know about an event: its layout, its prices, who runs it and when.
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
    /// The venue, when the event is not a grid; filled from the event's `venue` by the layout
    /// source. Shared: a layout is cloned per request, a venue may have 100,000 seats.
    #[serde(skip)]
    pub venue: Option<Arc<VenuePlan>>,
    /// What people read about the event: on tickets, pages and mail.
    #[serde(flatten)]
    pub about: EventFacts,
}

/// An event as its ticket holders read about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFacts {
    #[serde(default)]
    pub title: String,
    /// RFC 3339 in UTC.
    #[serde(default)]
    pub date: Option<String>,
    /// The IANA time zone the event takes place in.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
}

/// A venue with its seats findable by id.
#[derive(Debug)]
pub struct VenuePlan {
    pub venue: Venue,
    by_id: HashMap<String, usize>,
}

impl PartialEq for VenuePlan {
    fn eq(&self, other: &Self) -> bool {
        self.venue == other.venue
    }
}

impl Eq for VenuePlan {}

impl VenuePlan {
    pub fn new(venue: Venue) -> Self {
        let by_id = venue
            .seats
            .iter()
            .enumerate()
            .map(|(i, seat)| (seat.id.clone(), i))
            .collect();
        Self { venue, by_id }
    }

    /// The index of seat `id` in [`Venue::seats`].
    pub fn index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn seat(&self, id: &str) -> Option<&VenueSeat> {
        self.index(id).map(|i| &self.venue.seats[i])
    }

    /// The best seats for `request` among those `is_free` (neither held, sold nor blocked),
    /// and whether they are split.
    pub fn best(
        &self,
        is_free: impl Fn(&str) -> bool,
        request: &BestRequest,
    ) -> Option<(Vec<SeatId>, bool)> {
        let seats = &self.venue.seats;
        let grant = best_available(&self.venue, |i| is_free(&seats[i].id), request)?;
        let ids = grant
            .seats
            .iter()
            .map(|&i| SeatId::named(&seats[i].id))
            .collect();
        Some((ids, grant.split))
    }
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

    /// Every seat of a grid, row by row (none on a venue).
    pub fn grid_seats(&self) -> impl Iterator<Item = Seat> + '_ {
        let rows = if self.venue.is_some() { 0 } else { self.rows };
        (1..=rows)
            .flat_map(move |row| (1..=self.seats_per_row).map(move |number| Seat { row, number }))
    }

    /// Every seat's id, in layout order.
    pub fn seat_ids(&self) -> Vec<SeatId> {
        match &self.venue {
            Some(plan) => plan
                .venue
                .seats
                .iter()
                .map(|seat| SeatId::named(&seat.id))
                .collect(),
            None => self.grid_seats().map(|seat| seat.id()).collect(),
        }
    }

    /// Whether a buyer may take the seat on its own: not a wheelchair space or a companion seat
    /// (those go to buyers who ask for accessible seats, a companion with its space).
    pub fn on_general_sale(&self, id: &str) -> bool {
        self.venue
            .as_ref()
            .and_then(|plan| plan.seat(id))
            .is_none_or(|seat| !seat.wheelchair && seat.companion_of.is_none())
    }

    /// Whether the event has a seat with this id.
    pub fn has_seat(&self, id: &str) -> bool {
        match &self.venue {
            Some(plan) => plan.index(id).is_some(),
            None => Seat::parse(id).is_some_and(|seat| self.contains(seat)),
        }
    }

    /// The price category of a venue's seat (`None` on a grid, or for a seat it does not have).
    pub fn category_of(&self, id: &str) -> Option<&Category> {
        let plan = self.venue.as_ref()?;
        plan.venue.categories.get(plan.seat(id)?.category)
    }

    /// The price of one seat in minor units: its category's on a venue, the event's on a grid.
    pub fn price_of(&self, id: &str) -> i64 {
        self.category_of(id)
            .map_or(self.price_minor, |category| category.price_minor)
    }

    /// What `seat_ids` cost together, in minor units.
    pub fn total_of<'a>(&self, seat_ids: impl IntoIterator<Item = &'a SeatId>) -> i64 {
        seat_ids
            .into_iter()
            .fold(0i64, |sum, id| sum.saturating_add(self.price_of(id)))
    }

    pub fn capacity(&self) -> usize {
        match &self.venue {
            Some(plan) => plan.venue.seats.len(),
            None => usize::try_from(self.rows * self.seats_per_row).unwrap_or(usize::MAX),
        }
    }

    /// A seat as people read it: `Stalls, row A, seat 12` on a venue, `Row 1, seat 3` on a
    /// grid; the id itself for a seat the layout does not have.
    pub fn seat_label(&self, id: &str) -> String {
        if let Some(plan) = &self.venue
            && let Some(seat) = plan.seat(id)
        {
            let section = plan
                .venue
                .sections
                .get(seat.section)
                .map_or("", |s| s.name.as_str());
            return format!("{section}, row {}, seat {}", seat.row, seat.label);
        }
        match Seat::parse(id) {
            Some(seat) => format!("Row {}, seat {}", seat.row, seat.number),
            None => id.to_string(),
        }
    }

    /// The labels of `seats`, in order.
    pub fn seat_labels(&self, seats: &[SeatId]) -> Vec<SeatLabel> {
        seats
            .iter()
            .map(|seat| SeatLabel {
                seat_id: seat.to_string(),
                label: self.seat_label(seat),
            })
            .collect()
    }

    /// The event as the messages about it name it.
    pub fn summary(&self) -> EventSummary {
        EventSummary {
            title: self.about.title.clone(),
            date: self.about.date.clone(),
            timezone: self.about.timezone.clone(),
            location: self.about.location.clone(),
        }
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
            venue: None,
            about: crate::domain::seat::EventFacts::default(),
        };
        let ids: Vec<String> = layout.seat_ids().iter().map(|s| s.to_string()).collect();
        assert_eq!(ids, ["R1-S1", "R1-S2", "R1-S3", "R2-S1", "R2-S2", "R2-S3"]);
        assert_eq!(layout.seat_label("R2-S3"), "Row 2, seat 3");
        assert_eq!(layout.seat_label("nope"), "nope");
        assert!(layout.contains(Seat { row: 2, number: 3 }));
        assert!(!layout.contains(Seat { row: 3, number: 1 }));
    }
}
