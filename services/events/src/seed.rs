//! Demo events owned by the demo organizer, seeded into an empty embedded store unless
//! `DEMO_SEED=false` (never in production).

use holdfast_common::demo::DEMO_ORGANIZER;

use crate::AppState;
use holdfast_common::venue::VenueSpec;

use crate::domain::event::{Event, cheapest};
use crate::store::RepoError;
use holdfast_common::ids::new_object_id as new_event_id;
use holdfast_common::when::{self, format_millis};

const DAY_MS: i64 = 86_400_000;

struct Demo {
    title: &'static str,
    description: &'static str,
    in_days: i64,
    location: &'static str,
    tags: &'static [&'static str],
    rows: u32,
    seats_per_row: u32,
    price_minor: i64,
    /// A venue layout (JSON) instead of the grid.
    venue: Option<&'static str>,
}

/// A theatre: stalls (premium front rows with wheelchair spaces and companion seats beside
/// them, standard behind), a dress circle and a balcony with restricted views at its ends;
/// 316 seats in three categories.
const THEATRE: &str = r#"{
  "categories": [
    {"key": "premium", "name": "Premium", "price": 2500},
    {"key": "standard", "name": "Standard", "price": 1500},
    {"key": "economy", "name": "Economy", "price": 600}
  ],
  "sections": [
    {"key": "stalls", "name": "Stalls", "category": "standard", "rows": [
      {"label": "A", "category": "premium", "seats": "1-4 | 5-16 | 17-20", "overrides": [
        {"seat": "1", "wheelchair": true}, {"seat": "2", "companionOf": "1"},
        {"seat": "20", "wheelchair": true}, {"seat": "19", "companionOf": "20"}
      ]},
      {"label": "B", "category": "premium", "seats": "1-4 | 5-16 | 17-20"},
      {"label": "C", "category": "premium", "seats": "1-4 | 5-16 | 17-20"},
      {"label": "D", "seats": "1-4 | 5-16 | 17-20"},
      {"label": "E", "seats": "1-4 | 5-16 | 17-20"},
      {"label": "F", "seats": "1-4 | 5-16 | 17-20"},
      {"label": "G", "seats": "1-4 | 5-16 | 17-20"},
      {"label": "H", "seats": "1-4 | 5-16 | 17-20"}
    ]},
    {"key": "circle", "name": "Dress Circle", "category": "standard", "rows": [
      {"label": "A", "seats": "1-24"},
      {"label": "B", "seats": "1-24"},
      {"label": "C", "category": "economy", "seats": "1-24"}
    ]},
    {"key": "balcony", "name": "Balcony", "category": "economy", "rows": [
      {"label": "A", "seats": "1-28", "overrides": [
        {"seat": "1", "restrictedView": true}, {"seat": "28", "restrictedView": true}
      ]},
      {"label": "B", "seats": "1-28", "overrides": [
        {"seat": "1", "restrictedView": true}, {"seat": "28", "restrictedView": true}
      ]},
      {"label": "C", "seats": "1-28", "overrides": [
        {"seat": "1", "restrictedView": true}, {"seat": "28", "restrictedView": true}
      ]}
    ]}
  ]
}"#;

const DEMOS: &[Demo] = &[
    Demo {
        title: "Midnight Jazz Quartet",
        description: "Smooth saxophone and late-night standards.",
        in_days: 7,
        location: "Blue Note Hall, Mumbai",
        tags: &["jazz", "music"],
        rows: 8,
        seats_per_row: 12,
        price_minor: 75_000,
        venue: None,
    },
    Demo {
        title: "Indie Rock Night",
        description: "Three local bands, loud guitars, standing room up front.",
        in_days: 14,
        location: "The Warehouse, Bengaluru",
        tags: &["rock", "music", "live"],
        rows: 10,
        seats_per_row: 20,
        price_minor: 120_000,
        venue: None,
    },
    Demo {
        title: "Rust in Production",
        description: "Talks on building reliable services in Rust.",
        in_days: 21,
        location: "Convention Centre, Pune",
        tags: &["tech", "talk"],
        rows: 12,
        seats_per_row: 15,
        price_minor: 250_000,
        venue: None,
    },
    Demo {
        title: "Stand-up Comedy Open Mic",
        description: "New voices, five minutes each.",
        in_days: 10,
        location: "Laugh Factory, Delhi",
        tags: &["comedy"],
        rows: 5,
        seats_per_row: 10,
        price_minor: 30_000,
        venue: None,
    },
    Demo {
        title: "Symphony Under the Stars",
        description: "An open-air evening of classical favourites.",
        in_days: 30,
        location: "Garden Amphitheatre, Chennai",
        tags: &["classical", "music", "outdoor"],
        rows: 20,
        seats_per_row: 30,
        price_minor: 90_050,
        venue: None,
    },
    Demo {
        title: "Championship Final Screening",
        description: "The final on the big screen, with commentary.",
        in_days: 3,
        location: "Cinema One, Hyderabad",
        tags: &["sports"],
        rows: 6,
        seats_per_row: 16,
        price_minor: 0,
        venue: None,
    },
    Demo {
        title: "Hamlet at the Royal Playhouse",
        description: "Shakespeare's tragedy in a new production; stalls, dress circle and balcony.",
        in_days: 18,
        location: "Royal Playhouse, Kolkata",
        tags: &["theatre", "drama"],
        rows: 5,
        seats_per_row: 10,
        price_minor: 60_000,
        venue: Some(THEATRE),
    },
];

/// Seeds the demo events when asked for and the store is empty.
pub async fn seed_demo_events(state: &AppState) -> Result<(), RepoError> {
    if !state.seeds_demo_data || state.events.count().await? > 0 {
        return Ok(());
    }
    let now = when::now_millis();
    // Whole hours, 19:00 UTC, so the demo dates read naturally.
    let evening = (now / DAY_MS) * DAY_MS + 19 * 3_600_000;
    for demo in DEMOS {
        let date_ms = evening + demo.in_days * DAY_MS;
        let event = Event {
            id: new_event_id(),
            title: demo.title.into(),
            description: Some(demo.description.into()),
            date: format_millis(date_ms),
            date_ms,
            timezone: when::DEFAULT_TIME_ZONE.into(),
            location: Some(demo.location.into()),
            tags: demo.tags.iter().map(|t| t.to_string()).collect(),
            image_url: None,
            organizer_id: DEMO_ORGANIZER.id.into(),
            rows: demo.rows,
            seats_per_row: demo.seats_per_row,
            price_minor: demo.price_minor,
            currency: "INR".into(),
            venue: None,
        };
        let event = match demo.venue.map(serde_json::from_str::<VenueSpec>) {
            Some(Ok(venue)) => Event {
                price_minor: cheapest(&venue).unwrap_or(event.price_minor),
                venue: Some(venue),
                ..event
            },
            Some(Err(error)) => return Err(RepoError::Corrupt(format!("demo venue: {error}"))),
            None => event,
        };
        state.events.insert(&event).await?;
    }
    tracing::info!(count = DEMOS.len(), "demo events seeded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_theatre_is_a_valid_venue() {
        let venue: VenueSpec = serde_json::from_str(THEATRE).unwrap();
        let expanded = venue.expand().unwrap();
        assert_eq!(expanded.seats.len(), 316);
        assert_eq!(expanded.categories.len(), 3);
        assert_eq!(expanded.seats.iter().filter(|s| s.wheelchair).count(), 2);
        assert_eq!(cheapest(&venue), Some(60_000));
    }
}
