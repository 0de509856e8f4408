//! The seat map views of a venue event (a grid event's are written in [`crate::live`]): every
//! seat with its section, row, label, category and flags; and the compact view, which lists
//! only the seats that are not available and counts what is still available per category and
//! per section, so a client can show "Premium: 14 left" without the full map. Both are written
//! directly, as the grid's are: they are rebuilt on every change of a hot event.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::domain::ids::SeatId;
use crate::domain::seat::VenuePlan;

/// Appends `text` as a JSON string. Keys and labels are checked to be plain (letters, digits,
/// `_`) when the venue is written, names are free text: escaped by serde.
fn push_str(out: &mut String, text: &str) {
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// `"categories":[…],"sections":[…]` with each category's price.
fn push_legend(out: &mut String, plan: &VenuePlan) {
    out.push_str("\"categories\":[");
    for (i, category) in plan.venue.categories.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        push_str(out, &category.key);
        out.push_str(",\"name\":");
        push_str(out, &category.name);
        out.push_str(",\"price\":");
        out.push_str(&holdfast_common::money::to_json(category.price_minor).to_string());
        out.push('}');
    }
    out.push_str("],\"sections\":[");
    for (i, section) in plan.venue.sections.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        push_str(out, &section.key);
        out.push_str(",\"name\":");
        push_str(out, &section.name);
        out.push('}');
    }
    out.push(']');
}

/// The held and the sold seats (sold winning), as sets of ids.
fn states<'a>(held: &'a [SeatId], sold: &'a [SeatId]) -> (HashSet<&'a str>, HashSet<&'a str>) {
    let sold: HashSet<&str> = sold.iter().map(SeatId::as_str).collect();
    let held = held
        .iter()
        .map(SeatId::as_str)
        .filter(|seat| !sold.contains(seat))
        .collect();
    (held, sold)
}

/// Every seat of the venue with its state.
pub fn full_json(event_id: &str, plan: &VenuePlan, held: &[SeatId], sold: &[SeatId]) -> String {
    let (held, sold) = states(held, sold);
    let venue = &plan.venue;
    let mut out = String::with_capacity(256 + venue.seats.len() * 112);
    let _ = write!(out, "{{\"eventId\":\"{event_id}\",\"kind\":\"venue\",");
    push_legend(&mut out, plan);
    out.push_str(",\"seats\":[");
    for (i, seat) in venue.seats.iter().enumerate() {
        let state = if sold.contains(seat.id.as_str()) {
            "reserved"
        } else if held.contains(seat.id.as_str()) {
            "held"
        } else {
            "available"
        };
        if i > 0 {
            out.push(',');
        }
        let section = &venue.sections[seat.section].key;
        let category = &venue.categories[seat.category].key;
        let _ = write!(
            out,
            "{{\"seatId\":\"{}\",\"section\":\"{section}\",\"row\":\"{}\",\"label\":\"{}\",\
             \"category\":\"{category}\",\"state\":\"{state}\"",
            seat.id, seat.row, seat.label
        );
        if seat.wheelchair {
            out.push_str(",\"wheelchair\":true");
        }
        if let Some(space) = seat.companion_of {
            let _ = write!(out, ",\"companionOf\":\"{}\"", venue.seats[space].id);
        }
        if seat.restricted_view {
            out.push_str(",\"restrictedView\":true");
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// A venue's seats at one version: the held and the sold ones (in venue order) and how many of
/// the others each category and section has.
struct Tally<'a> {
    held: Vec<&'a str>,
    sold: Vec<&'a str>,
    by_category: Vec<usize>,
    by_section: Vec<usize>,
}

impl<'a> Tally<'a> {
    fn new(plan: &'a VenuePlan, held: &[SeatId], sold: &[SeatId]) -> Self {
        let (held, sold) = states(held, sold);
        let venue = &plan.venue;
        let mut tally = Tally {
            held: Vec::with_capacity(held.len()),
            sold: Vec::with_capacity(sold.len()),
            by_category: vec![0; venue.categories.len()],
            by_section: vec![0; venue.sections.len()],
        };
        // In venue order, so the lists are stable from one version to the next.
        for seat in &venue.seats {
            if sold.contains(seat.id.as_str()) {
                tally.sold.push(&seat.id);
            } else if held.contains(seat.id.as_str()) {
                tally.held.push(&seat.id);
            } else {
                tally.by_category[seat.category] += 1;
                tally.by_section[seat.section] += 1;
            }
        }
        tally
    }
}

/// The seats that are not available, and the available count per category and section.
pub fn compact_json(
    event_id: &str,
    plan: &VenuePlan,
    version: u64,
    held: &[SeatId],
    sold: &[SeatId],
) -> String {
    let tally = Tally::new(plan, held, sold);
    let venue = &plan.venue;
    let mut out = String::with_capacity(256 + 24 * (tally.held.len() + tally.sold.len()));
    let _ = write!(
        out,
        "{{\"eventId\":\"{event_id}\",\"version\":{version},\"kind\":\"venue\",\"capacity\":{},",
        venue.seats.len()
    );
    push_legend(&mut out, plan);
    out.push_str(",\"available\":{\"categories\":{");
    for (i, category) in venue.categories.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{}\":{}", category.key, tally.by_category[i]);
    }
    out.push_str("},\"sections\":{");
    for (i, section) in venue.sections.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{}\":{}", section.key, tally.by_section[i]);
    }
    out.push_str("}},\"held\":");
    push_ids(&mut out, &tally.held);
    out.push_str(",\"reserved\":");
    push_ids(&mut out, &tally.sold);
    out.push('}');
    out
}

/// What is available per category and per section: `{categories: {key: n}, sections: {…}}`.
pub fn available(plan: &VenuePlan, held: &[SeatId], sold: &[SeatId]) -> serde_json::Value {
    let tally = Tally::new(plan, held, sold);
    let venue = &plan.venue;
    let counts =
        |keys: Vec<&String>, counts: &[usize]| -> serde_json::Map<String, serde_json::Value> {
            keys.into_iter()
                .zip(counts)
                .map(|(key, n)| (key.clone(), (*n).into()))
                .collect()
        };
    serde_json::json!({
        "categories": counts(venue.categories.iter().map(|c| &c.key).collect(), &tally.by_category),
        "sections": counts(venue.sections.iter().map(|s| &s.key).collect(), &tally.by_section),
    })
}

fn push_ids(out: &mut String, ids: &[&str]) {
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{id}\"");
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use holdfast_common::venue::VenueSpec;
    use serde_json::{Value, json};

    use super::*;

    fn plan() -> VenuePlan {
        let spec: VenueSpec = serde_json::from_value(json!({
            "categories": [
                {"key": "premium", "name": "Premium \"front\"", "price": 1200},
                {"key": "standard", "name": "Standard", "price": 650.5}
            ],
            "sections": [
                {"key": "stalls", "name": "Stalls", "category": "premium", "rows": [
                    {"label": "A", "seats": "1-2 | 3-4", "overrides": [
                        {"seat": "1", "wheelchair": true},
                        {"seat": "2", "companionOf": "1"},
                        {"seat": "4", "restrictedView": true, "category": "standard"}
                    ]}
                ]},
                {"key": "circle", "name": "Circle", "category": "standard", "rows": [
                    {"label": "A", "seats": "1-3"}
                ]}
            ]
        }))
        .unwrap();
        VenuePlan::new(spec.expand().unwrap())
    }

    fn ids(seats: &[&str]) -> Vec<SeatId> {
        seats.iter().map(|s| SeatId::from(*s)).collect()
    }

    #[test]
    fn the_full_view_carries_places_categories_and_flags() {
        let json: Value = serde_json::from_str(&full_json(
            "e1",
            &plan(),
            &ids(&["stalls-A-3", "circle-A-1"]),
            &ids(&["circle-A-1"]),
        ))
        .unwrap();
        assert_eq!(json["kind"], "venue");
        assert_eq!(json["categories"][0]["name"], "Premium \"front\"");
        assert_eq!(json["categories"][1]["price"], json!(650.5));
        let seats = json["seats"].as_array().unwrap();
        assert_eq!(seats.len(), 7);
        assert_eq!(
            seats[0],
            json!({"seatId": "stalls-A-1", "section": "stalls", "row": "A", "label": "1",
                   "category": "premium", "state": "available", "wheelchair": true})
        );
        assert_eq!(seats[1]["companionOf"], "stalls-A-1");
        assert_eq!(seats[2]["state"], "held");
        assert_eq!(seats[3]["restrictedView"], true);
        assert_eq!(seats[3]["category"], "standard");
        assert_eq!(seats[4]["state"], "reserved", "sold wins over held");
    }

    /// Mails, pages and "My orders" name a venue seat by its section's name, row and label.
    #[test]
    fn venue_seats_read_as_section_row_and_seat() {
        let layout = crate::domain::seat::Layout {
            event_id: "e1".into(),
            rows: 0,
            seats_per_row: 0,
            price_minor: 0,
            currency: "INR".into(),
            version: 0,
            organizer_id: None,
            starts_at_ms: None,
            venue: Some(std::sync::Arc::new(plan())),
            about: crate::domain::seat::EventFacts::default(),
        };
        assert_eq!(layout.seat_label("stalls-A-4"), "Stalls, row A, seat 4");
        assert_eq!(layout.seat_label("circle-A-2"), "Circle, row A, seat 2");
        assert_eq!(layout.seat_label("R1-S1"), "Row 1, seat 1");
    }

    #[test]
    fn the_compact_view_counts_what_is_left_per_category_and_section() {
        let json: Value = serde_json::from_str(&compact_json(
            "e1",
            &plan(),
            9,
            &ids(&["stalls-A-3", "circle-A-1"]),
            &ids(&["circle-A-1", "circle-A-3"]),
        ))
        .unwrap();
        assert_eq!(json["version"], 9);
        assert_eq!(json["capacity"], 7);
        assert_eq!(
            json["available"],
            json!({"categories": {"premium": 2, "standard": 2},
                   "sections": {"stalls": 3, "circle": 1}})
        );
        assert_eq!(json["held"], json!(["stalls-A-3"]));
        assert_eq!(json["reserved"], json!(["circle-A-1", "circle-A-3"]));
    }
}
