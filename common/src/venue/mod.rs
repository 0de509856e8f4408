//! Venue layouts: price categories, sections, labelled rows and seats, as an organizer writes
//! them (compactly) and as the seat map and best-available read them (every seat expanded, with
//! its adjacency and its rank). Shared because the events service checks a venue when it is
//! written and the orders service sells its seats; free of I/O.
//!
//! A row's seats are written as text: items separated by `,` sit side by side, `|` is an aisle
//! or a gap (no adjacency across it). An item is a number range `1-24` (or `24-1`, numbered
//! right to left) or a single label (`12`, `12A`). So `"1-6 | 7-20 | 21-26"` is a row of 26
//! seats with two aisles. A category given on the section applies to its rows, one on the row to
//! its seats, and `overrides` change single seats (category, wheelchair space, companion seat,
//! restricted view). Seat ids read `<section>-<row>-<seat>` (`stalls-A-12`).
//!
//! Ranking for best-available, best first: the section's `priority` (lower first; default its
//! order in the document), then the row's (default: its order in the section, front first), then
//! the distance from the middle of the row.

mod best;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Number;

pub use self::best::{BestRequest, Grant, best_available, best_available_where, best_blocks};
use crate::money;

/// A seat's rank is `section << 40 | row << 20 | distance from the row's middle`: the bits
/// below this shift rank a seat within its row, those above rank the row.
pub const ROW_RANK_SHIFT: u32 = 20;

/// The most seats one venue may have.
pub const MAX_SEATS: usize = 100_000;
/// The longest key or label (ids stay short and readable).
const MAX_LABEL: usize = 16;

/// A venue as an organizer writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = Venue)]
pub struct VenueSpec {
    pub categories: Vec<CategorySpec>,
    pub sections: Vec<SectionSpec>,
    /// Companion seats (by id, `stalls-A-2`) the organizer has released to general sale: any
    /// buyer may hold them on their own. Changing this list is not a layout change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released_companions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PriceCategory)]
pub struct CategorySpec {
    pub key: String,
    pub name: String,
    /// Per seat, in major units of the event's currency (at most 2 decimals).
    #[schema(value_type = f64, minimum = 0, example = 1200)]
    pub price: Number,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = VenueSection)]
pub struct SectionSpec {
    pub key: String,
    pub name: String,
    /// The category of every seat not given one by its row or an override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Best-available rank (lower first); default: the section's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    pub rows: Vec<RowSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = VenueRow)]
pub struct RowSpec {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Best-available rank within the section (lower first); default: the row's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// The seats, e.g. `"1-6 | 7-20 | 21-26"` (see the module's documentation).
    pub seats: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<SeatOverride>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = SeatOverride)]
pub struct SeatOverride {
    /// The seat's label in its row.
    pub seat: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// A wheelchair space.
    #[serde(default, skip_serializing_if = "is_false")]
    pub wheelchair: bool,
    /// A companion seat of the wheelchair space with this label, next to it in the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companion_of: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub restricted_view: bool,
}

fn is_false(flag: &bool) -> bool {
    !flag
}

/// A price category, its price in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub key: String,
    pub name: String,
    pub price_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub key: String,
    pub name: String,
}

/// One seat, expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueSeat {
    /// `<section>-<row>-<seat>`.
    pub id: String,
    /// Index into [`Venue::sections`].
    pub section: usize,
    pub row: String,
    pub label: String,
    /// Seats side by side share a block (a run of a row between aisles) and have consecutive
    /// `position`s in it.
    pub block: usize,
    pub position: usize,
    /// Index into [`Venue::categories`].
    pub category: usize,
    pub wheelchair: bool,
    /// Index into [`Venue::seats`] of the wheelchair space this seat accompanies.
    pub companion_of: Option<usize>,
    pub restricted_view: bool,
    /// Best-available rank: lower is better.
    pub rank: u64,
}

/// A venue with every seat expanded, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venue {
    pub categories: Vec<Category>,
    pub sections: Vec<Section>,
    pub seats: Vec<VenueSeat>,
    /// The blocks, by [`VenueSeat::block`].
    pub blocks: Vec<Block>,
    /// Block indices, best-ranked row first (venue order among equals): best available looks
    /// at rows in this order and stops after the first row rank with room.
    pub blocks_by_rank: Vec<usize>,
}

/// A run of seats side by side: seats `start..end` of [`Venue::seats`], all of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub start: usize,
    pub end: usize,
    /// The rank of the block's row (its seats' ranks above [`ROW_RANK_SHIFT`]).
    pub row_rank: u64,
}

impl Venue {
    /// Fills [`Venue::blocks`] and [`Venue::blocks_by_rank`] from the seats.
    fn index_blocks(&mut self) {
        let mut start = 0;
        while start < self.seats.len() {
            let block = self.seats[start].block;
            let end = self.seats[start..]
                .iter()
                .position(|seat| seat.block != block)
                .map_or(self.seats.len(), |len| start + len);
            self.blocks.push(Block {
                start,
                end,
                row_rank: self.seats[start].rank >> ROW_RANK_SHIFT,
            });
            start = end;
        }
        self.blocks_by_rank = (0..self.blocks.len()).collect();
        self.blocks_by_rank
            .sort_by_key(|&b| (self.blocks[b].row_rank, self.blocks[b].start));
    }
}

/// What is wrong with a venue: each offending field (`sections[0].rows[2].seats`) with why.
pub type Problems = Vec<(String, String)>;

impl VenueSpec {
    /// The venue with every seat expanded, or every problem found.
    pub fn expand(&self) -> Result<Venue, Problems> {
        let mut problems = Problems::new();
        let categories = self.categories(&mut problems);
        let by_key: HashMap<&str, usize> = self
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.key.as_str(), i))
            .collect();
        let mut venue = Venue {
            categories,
            sections: Vec::new(),
            seats: Vec::new(),
            blocks: Vec::new(),
            blocks_by_rank: Vec::new(),
        };
        if self.sections.is_empty() {
            problems.push(("sections".into(), "at least one section".into()));
        }
        let mut section_keys = HashSet::new();
        let mut blocks = 0;
        for (s, section) in self.sections.iter().enumerate() {
            let at = format!("sections[{s}]");
            check_label(&section.key, &format!("{at}.key"), &mut problems);
            if !section_keys.insert(section.key.as_str()) {
                problems.push((format!("{at}.key"), "used by another section".into()));
            }
            venue.sections.push(Section {
                key: section.key.clone(),
                name: section.name.clone(),
            });
            let section_rank = u64::from(section.priority.unwrap_or(s as u32));
            let mut row_labels = HashSet::new();
            for (r, row) in section.rows.iter().enumerate() {
                let at = format!("{at}.rows[{r}]");
                check_label(&row.label, &format!("{at}.label"), &mut problems);
                if !row_labels.insert(row.label.as_str()) {
                    problems.push((format!("{at}.label"), "used by another row".into()));
                }
                // Named where it is written: on the row, or on the section it inherits from.
                let category = match (&row.category, &section.category) {
                    (Some(key), _) => Some((key, format!("{at}.category"))),
                    (None, Some(key)) => Some((key, format!("sections[{s}].category"))),
                    (None, None) => None,
                }
                .map(|(key, field)| category_index(&by_key, key, &field, &mut problems));
                let row_rank = u64::from(row.priority.unwrap_or(r as u32));
                let first = venue.seats.len();
                let runs = match parse_seats(&row.seats, MAX_SEATS - venue.seats.len()) {
                    Ok(runs) => runs,
                    Err(why) => {
                        problems.push((format!("{at}.seats"), why.into()));
                        continue;
                    }
                };
                let width = runs.iter().map(Vec::len).sum::<usize>();
                let mut index_in_row: usize = 0;
                for run in runs {
                    for (position, label) in run.into_iter().enumerate() {
                        // Twice the distance from the row's middle, so that it stays whole.
                        let from_middle = (2 * index_in_row + 1).abs_diff(width) as u64;
                        venue.seats.push(VenueSeat {
                            id: format!("{}-{}-{label}", section.key, row.label),
                            section: s,
                            row: row.label.clone(),
                            label,
                            block: blocks,
                            position,
                            category: category.flatten().unwrap_or(usize::MAX),
                            wheelchair: false,
                            companion_of: None,
                            restricted_view: false,
                            rank: (section_rank << (2 * ROW_RANK_SHIFT))
                                | (row_rank << ROW_RANK_SHIFT)
                                | from_middle.min((1 << ROW_RANK_SHIFT) - 1),
                        });
                        index_in_row += 1;
                    }
                    blocks += 1;
                }
                apply_overrides(&mut venue.seats, first, row, &at, &by_key, &mut problems);
            }
        }
        self.release_companions(&mut venue.seats, &mut problems);
        for seat in venue
            .seats
            .iter()
            .filter(|seat| seat.category == usize::MAX)
        {
            problems.push((
                format!("sections[{}]", seat.section),
                format!("seat {} has no category (row {})", seat.label, seat.row),
            ));
        }
        dedup(&mut problems);
        if problems.is_empty() {
            venue.index_blocks();
            Ok(venue)
        } else {
            Err(problems)
        }
    }

    /// Whether `other` has the same layout, whatever companion seats each has released (that
    /// changes who may buy a seat, not the seats).
    pub fn same_layout(&self, other: &VenueSpec) -> bool {
        self.categories == other.categories && self.sections == other.sections
    }

    /// Makes the released companion seats ordinary seats.
    fn release_companions(&self, seats: &mut [VenueSeat], problems: &mut Problems) {
        for (r, id) in self.released_companions.iter().enumerate() {
            match seats.iter_mut().find(|seat| seat.id == *id) {
                Some(seat) if seat.companion_of.is_some() => seat.companion_of = None,
                Some(_) => problems.push((
                    format!("releasedCompanions[{r}]"),
                    format!("{id} is not a companion seat"),
                )),
                None => problems.push((
                    format!("releasedCompanions[{r}]"),
                    format!("no seat {id} in this venue"),
                )),
            }
        }
    }

    fn categories(&self, problems: &mut Problems) -> Vec<Category> {
        if self.categories.is_empty() {
            problems.push(("categories".into(), "at least one category".into()));
        }
        let mut keys = HashSet::new();
        self.categories
            .iter()
            .enumerate()
            .map(|(i, c)| {
                check_label(&c.key, &format!("categories[{i}].key"), problems);
                if !keys.insert(c.key.as_str()) {
                    problems.push((
                        format!("categories[{i}].key"),
                        "used by another category".into(),
                    ));
                }
                let price_minor = money::parse_minor(&c.price).unwrap_or_else(|why| {
                    problems.push((format!("categories[{i}].price"), why.into()));
                    0
                });
                Category {
                    key: c.key.clone(),
                    name: c.name.clone(),
                    price_minor,
                }
            })
            .collect()
    }
}

/// Keys and labels: 1 to 16 letters, digits, `_`, never `-` (it separates the parts of an id).
fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_label(label: &str, at: &str, problems: &mut Problems) {
    if !is_label(label) {
        problems.push((at.into(), format!("1 to {MAX_LABEL} letters, digits or _")));
    }
}

fn category_index(
    by_key: &HashMap<&str, usize>,
    key: &str,
    at: &str,
    problems: &mut Problems,
) -> Option<usize> {
    let found = by_key.get(key).copied();
    if found.is_none() {
        problems.push((at.into(), format!("no category {key:?}")));
    }
    found
}

/// The runs of a row's seats (see the module's documentation), at most `room` seats; why not
/// when the text does not parse, repeats a label, names no seat or too many.
fn parse_seats(text: &str, room: usize) -> Result<Vec<Vec<String>>, &'static str> {
    const FORM: &str =
        "seats like \"1-6 | 7-20\": ranges and labels, `,` side by side, `|` an aisle";
    let mut seen = HashSet::new();
    let mut runs = Vec::new();
    for run in text.split('|') {
        let mut labels = Vec::new();
        for item in run.split(',').map(str::trim) {
            match item.split_once('-') {
                Some((from, to)) => {
                    let (Ok(from), Ok(to)) = (from.trim().parse::<u32>(), to.trim().parse::<u32>())
                    else {
                        return Err(FORM);
                    };
                    if from == 0 || to == 0 {
                        return Err(FORM);
                    }
                    if seen.len() + labels.len() + from.abs_diff(to) as usize >= room {
                        return Err("more seats than a venue may have (100,000)");
                    }
                    let numbers: Vec<u32> = if from <= to {
                        (from..=to).collect()
                    } else {
                        (to..=from).rev().collect()
                    };
                    labels.extend(numbers.into_iter().map(|n| n.to_string()));
                }
                None => {
                    if seen.len() + labels.len() >= room {
                        return Err("more seats than a venue may have (100,000)");
                    }
                    if !is_label(item) {
                        return Err(FORM);
                    }
                    labels.push(item.to_string());
                }
            }
        }
        if labels.iter().any(|label| !seen.insert(label.clone())) {
            return Err("a seat label is listed twice");
        }
        runs.push(labels);
    }
    if seen.is_empty() {
        return Err(FORM);
    }
    Ok(runs)
}

/// Applies `row`'s overrides to its seats (from `first` in `seats`).
fn apply_overrides(
    seats: &mut [VenueSeat],
    first: usize,
    row: &RowSpec,
    at: &str,
    by_key: &HashMap<&str, usize>,
    problems: &mut Problems,
) {
    let index_of = |label: &str, seats: &[VenueSeat]| {
        seats[first..]
            .iter()
            .position(|seat| seat.label == label)
            .map(|i| first + i)
    };
    for (o, change) in row.overrides.iter().enumerate() {
        let at = format!("{at}.overrides[{o}]");
        let Some(i) = index_of(&change.seat, seats) else {
            problems.push((
                format!("{at}.seat"),
                format!("no seat {:?} in this row", change.seat),
            ));
            continue;
        };
        if let Some(key) = &change.category
            && let Some(category) = category_index(by_key, key, &format!("{at}.category"), problems)
        {
            seats[i].category = category;
        }
        seats[i].wheelchair = change.wheelchair;
        seats[i].restricted_view = change.restricted_view;
    }
    // Companions last, once every wheelchair space of the row is known.
    for (o, change) in row.overrides.iter().enumerate() {
        let (Some(space), Some(i)) = (&change.companion_of, index_of(&change.seat, seats)) else {
            continue;
        };
        let at = format!("{at}.overrides[{o}].companionOf");
        match index_of(space, seats) {
            Some(j)
                if seats[j].wheelchair
                    && seats[j].block == seats[i].block
                    && seats[j].position.abs_diff(seats[i].position) == 1 =>
            {
                seats[i].companion_of = Some(j);
            }
            Some(_) => problems.push((at, "must be a wheelchair space next to the seat".into())),
            None => problems.push((at, format!("no seat {space:?} in this row"))),
        }
    }
}

fn dedup(problems: &mut Problems) {
    let mut seen = HashSet::new();
    problems.retain(|problem| seen.insert(problem.clone()));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(value: serde_json::Value) -> VenueSpec {
        serde_json::from_value(value).unwrap()
    }

    fn theatre() -> VenueSpec {
        spec(json!({
            "categories": [
                {"key": "premium", "name": "Premium", "price": 120},
                {"key": "standard", "name": "Standard", "price": 80.5},
                {"key": "access", "name": "Accessible", "price": 40}
            ],
            "sections": [
                {"key": "stalls", "name": "Stalls", "category": "standard", "rows": [
                    {"label": "A", "category": "premium", "seats": "1-4 | 5-8"},
                    {"label": "B", "seats": "1-6", "overrides": [
                        {"seat": "1", "wheelchair": true, "category": "access"},
                        {"seat": "2", "companionOf": "1", "category": "access"}
                    ]}
                ]},
                {"key": "circle", "name": "Circle", "priority": 0, "category": "standard",
                 "rows": [{"label": "A", "seats": "12A, 12B"}]}
            ]
        }))
    }

    #[test]
    fn a_compact_venue_expands_to_readable_seats_with_categories_and_flags() {
        let venue = theatre().expand().unwrap();
        assert_eq!(venue.seats.len(), 16);
        let seat = |id: &str| venue.seats.iter().find(|s| s.id == id).unwrap();
        assert_eq!(venue.categories[seat("stalls-A-8").category].key, "premium");
        assert_eq!(
            venue.categories[seat("stalls-B-3").category].key,
            "standard"
        );
        assert_eq!(venue.categories[1].price_minor, 8050);
        let space = seat("stalls-B-1");
        assert!(space.wheelchair);
        assert_eq!(
            seat("stalls-B-2")
                .companion_of
                .map(|i| venue.seats[i].id.as_str()),
            Some("stalls-B-1")
        );
        assert_eq!(seat("circle-A-12B").label, "12B");
    }

    #[test]
    fn aisles_break_adjacency_and_the_middle_of_a_front_row_ranks_first() {
        let venue = theatre().expand().unwrap();
        let seat = |id: &str| venue.seats.iter().find(|s| s.id == id).unwrap();
        assert_eq!(seat("stalls-A-3").block, seat("stalls-A-4").block);
        assert_ne!(seat("stalls-A-4").block, seat("stalls-A-5").block);
        assert_eq!(seat("stalls-A-5").position, 0);
        // Row A of the stalls: 4 and 5 are the middle, 1 and 8 the ends.
        assert!(seat("stalls-A-4").rank < seat("stalls-A-3").rank);
        assert_eq!(seat("stalls-A-4").rank, seat("stalls-A-5").rank);
        assert!(
            seat("stalls-A-8").rank < seat("stalls-B-3").rank,
            "front rows first"
        );
        // The circle's priority 0 ties with the stalls' (its order, 0): then rows decide.
        assert!(seat("circle-A-12A").rank < seat("stalls-B-3").rank);
    }

    #[test]
    fn numbering_right_to_left_reverses_the_labels() {
        let venue = spec(json!({
            "categories": [{"key": "c", "name": "C", "price": 1}],
            "sections": [{"key": "s", "name": "S", "category": "c",
                          "rows": [{"label": "A", "seats": "3-1"}]}]
        }))
        .expand()
        .unwrap();
        let labels: Vec<&str> = venue.seats.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["3", "2", "1"]);
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let problems = spec(json!({
            "categories": [
                {"key": "c", "name": "C", "price": 1.234},
                {"key": "c", "name": "Again", "price": 1}
            ],
            "sections": [{"key": "s-1", "name": "S", "rows": [
                {"label": "A", "category": "nope", "seats": "1-3"},
                {"label": "A", "seats": "1-2, 2"},
                {"label": "B", "category": "c", "seats": "1-3", "overrides": [
                    {"seat": "9"},
                    {"seat": "3", "companionOf": "1"}
                ]}
            ]}]
        }))
        .expand()
        .unwrap_err();
        let fields: HashSet<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        for field in [
            "categories[0].price",
            "categories[1].key",
            "sections[0].key",
            "sections[0].rows[0].category",
            "sections[0].rows[1].label",
            "sections[0].rows[1].seats",
            "sections[0].rows[2].overrides[0].seat",
            "sections[0].rows[2].overrides[1].companionOf",
        ] {
            assert!(fields.contains(field), "{field} missing from {problems:?}");
        }
    }

    #[test]
    fn a_venue_over_the_seat_limit_is_refused() {
        let rows: Vec<serde_json::Value> = (0..11)
            .map(|r| json!({"label": format!("R{r}"), "seats": "1-10000"}))
            .collect();
        let problems = spec(json!({
            "categories": [{"key": "c", "name": "C", "price": 1}],
            "sections": [{"key": "s", "name": "S", "category": "c", "rows": rows}]
        }))
        .expand()
        .unwrap_err();
        assert_eq!(problems[0].0, "sections[0].rows[10].seats", "{problems:?}");
        // One row alone cannot ask for more than the limit either, by ranges or labels.
        for seats in [
            "1-60000, 60001-120000".to_string(),
            (1..=100_001)
                .map(|n| format!("x{n}"))
                .collect::<Vec<_>>()
                .join(","),
        ] {
            let problems = spec(json!({
                "categories": [{"key": "c", "name": "C", "price": 1}],
                "sections": [{"key": "s", "name": "S", "category": "c",
                              "rows": [{"label": "A", "seats": seats}]}]
            }))
            .expand()
            .unwrap_err();
            assert_eq!(problems[0].0, "sections[0].rows[0].seats", "{problems:?}");
        }
    }

    #[test]
    fn a_twenty_thousand_seat_venue_is_a_small_document() {
        let rows: Vec<serde_json::Value> = (0..100)
            .map(|r| json!({"label": format!("R{r}"), "seats": "1-50 | 51-150 | 151-200"}))
            .collect();
        let document = json!({
            "categories": [{"key": "c", "name": "C", "price": 1}],
            "sections": [{"key": "s", "name": "S", "category": "c", "rows": rows}]
        });
        assert!(document.to_string().len() < 8_000);
        assert_eq!(spec(document).expand().unwrap().seats.len(), 20_000);
    }

    #[test]
    fn released_companion_seats_are_ordinary_seats_and_not_a_layout_change() {
        let mut released = theatre();
        released.released_companions = vec!["stalls-B-2".into()];
        let venue = released.expand().unwrap();
        let seat = venue.seats.iter().find(|s| s.id == "stalls-B-2").unwrap();
        assert_eq!(seat.companion_of, None);
        assert!(released.same_layout(&theatre()));
        released.released_companions = vec!["stalls-B-3".into(), "stalls-Z-1".into()];
        let problems = released.expand().unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(fields, ["releasedCompanions[0]", "releasedCompanions[1]"]);
    }
}
