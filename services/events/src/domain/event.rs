//! Events and the rules of their fields (the HTTP contract's "Events").
//!
//! [`EventFields`] is what clients send, on create (missing fields take their defaults) and on
//! update (any subset; `null` clears a nullable field). [`EventFields::apply`] checks every rule
//! with `validator`, naming each offending field, and yields a complete [`Event`].

use std::collections::BTreeMap;

use holdfast_common::extract::{field_messages, invalid};
use holdfast_common::venue::VenueSpec;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Number;
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use holdfast_common::money;
use holdfast_common::when;

pub const DEFAULT_ROWS: u32 = 5;
pub const DEFAULT_SEATS_PER_ROW: u32 = 10;
pub const DEFAULT_PRICE_MINOR: i64 = 50_000;
pub const DEFAULT_CURRENCY: &str = "INR";

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// RFC 3339 in UTC, however the organizer wrote it.
    pub date: String,
    /// `date` in milliseconds since the epoch, for sorting and range filters.
    pub date_ms: i64,
    /// The IANA time zone the event takes place in; dates sent without an offset are read in
    /// it.
    pub timezone: String,
    pub location: Option<String>,
    pub tags: Vec<String>,
    pub image_url: Option<String>,
    pub organizer_id: String,
    pub rows: u32,
    pub seats_per_row: u32,
    /// Per seat on a grid; on a venue, its cheapest category (what listings show as "from").
    pub price_minor: i64,
    pub currency: String,
    /// The venue layout, when the event is not sold as a `rows` × `seatsPerRow` grid.
    pub venue: Option<VenueSpec>,
}

/// Every offending field (as the JSON names it) with its messages.
pub type FieldProblems = BTreeMap<String, Vec<String>>;

impl Event {
    /// The event as the API and the bus show it.
    /// The event as `event.*` bus messages carry it: the fields of [`Event::view`].
    pub fn details(&self) -> holdfast_common::messages::EventDetails {
        let view = self.view();
        holdfast_common::messages::EventDetails {
            id: view.id.to_string(),
            title: view.title.to_string(),
            description: view.description.map(str::to_string),
            date: view.date,
            timezone: view.timezone.to_string(),
            location: view.location.map(str::to_string),
            tags: view.tags.to_vec(),
            image_url: view.image_url.map(str::to_string),
            organizer_id: view.organizer_id.to_string(),
            rows: view.rows,
            seats_per_row: view.seats_per_row,
            price: view.price,
            currency: view.currency.to_string(),
        }
    }

    pub fn view(&self) -> EventView<'_> {
        EventView {
            id: &self.id,
            title: &self.title,
            description: self.description.as_deref(),
            // From the instant, so dates stored before they were normalised answer alike.
            date: when::format_millis(self.date_ms),
            timezone: &self.timezone,
            location: self.location.as_deref(),
            tags: &self.tags,
            image_url: self.image_url.as_deref(),
            organizer_id: &self.organizer_id,
            rows: self.rows,
            seats_per_row: self.seats_per_row,
            price: money::to_json(self.price_minor),
            currency: &self.currency,
            venue: self.venue.as_ref(),
        }
    }
}

/// An event as the API and the bus show it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Event)]
pub struct EventView<'a> {
    /// 24 hexadecimal digits.
    #[serde(rename = "_id")]
    #[schema(example = "6650c0ffee0000000000abcd")]
    pub id: &'a str,
    #[schema(example = "Quartet at the Old Hall")]
    pub title: &'a str,
    pub description: Option<&'a str>,
    /// RFC 3339, UTC.
    #[schema(format = DateTime, example = "2027-03-14T14:00:00Z")]
    pub date: String,
    /// IANA time zone name.
    #[schema(example = "Asia/Kolkata")]
    pub timezone: &'a str,
    pub location: Option<&'a str>,
    pub tags: &'a [String],
    pub image_url: Option<&'a str>,
    pub organizer_id: &'a str,
    #[schema(minimum = 1, maximum = 100)]
    pub rows: u32,
    #[schema(minimum = 1, maximum = 200)]
    pub seats_per_row: u32,
    /// Per seat, in major units (at most 2 decimals).
    #[schema(value_type = f64, minimum = 0, example = 500)]
    pub price: Number,
    /// ISO 4217.
    #[schema(example = "INR")]
    pub currency: &'a str,
    /// The venue layout (sections, rows, price categories); `null` for a grid of `rows` ×
    /// `seatsPerRow` seats at `price`, whose dimensions a venue event leaves unused.
    pub venue: Option<&'a VenueSpec>,
}

/// Present-and-null (`Some(None)`) is told apart from absent (`None`).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn valid_title(title: &str) -> Result<(), ValidationError> {
    let length = title.trim().chars().count();
    if (1..=200).contains(&length) {
        Ok(())
    } else {
        Err(invalid("must be 1 to 200 characters"))
    }
}

fn valid_date(date: &str) -> Result<(), ValidationError> {
    // The shape only: the zone the date is read in cannot make it invalid.
    when::parse_millis(date, &when::TimeZone::UTC)
        .map(|_| ())
        .map_err(invalid)
}

fn valid_time_zone(name: &str) -> Result<(), ValidationError> {
    when::time_zone(name).map(|_| ()).map_err(invalid)
}

fn valid_tags(tags: &[String]) -> Result<(), ValidationError> {
    if tags.len() > 20 {
        return Err(invalid("at most 20 tags"));
    }
    if tags
        .iter()
        .any(|t| t.trim().is_empty() || t.trim().chars().count() > 40)
    {
        return Err(invalid("each tag must be 1 to 40 characters"));
    }
    Ok(())
}

/// An http(s) URL or a bare image file name (`poster.png`).
fn valid_image_url(url: &str) -> Result<(), ValidationError> {
    const MESSAGE: &str = "must be an http(s) URL or an image file name, at most 500 characters";
    if url.chars().count() > 500 {
        return Err(invalid(MESSAGE));
    }
    let lower = url.to_ascii_lowercase();
    let is_url = (lower.starts_with("http://") || lower.starts_with("https://"))
        && validator::ValidateUrl::validate_url(url);
    let is_file_name = !url.is_empty()
        && url
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && [".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".svg"]
            .iter()
            .any(|ext| lower.ends_with(ext));
    if is_url || is_file_name {
        Ok(())
    } else {
        Err(invalid(MESSAGE))
    }
}

fn valid_price(price: &Number) -> Result<(), ValidationError> {
    money::parse_minor(price).map(|_| ()).map_err(invalid)
}

fn valid_currency(code: &str) -> Result<(), ValidationError> {
    if money::is_currency_code(code) {
        Ok(())
    } else {
        Err(invalid("must be a 3-letter ISO 4217 code"))
    }
}

/// The fields of an event as a client sends them.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "title": "Quartet at the Old Hall",
    "date": "2027-03-14T19:30",
    "timezone": "Asia/Kolkata",
    "location": "Old Hall, Pune",
    "tags": ["music"],
    "rows": 5,
    "seatsPerRow": 10,
    "price": 500,
    "currency": "INR"
}))]
pub struct EventFields {
    #[validate(custom(function = "valid_title"))]
    #[schema(required, value_type = String, min_length = 1, max_length = 200)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub description: Option<Option<String>>,
    #[validate(custom(function = "valid_date"))]
    /// ISO 8601 date or date-time: RFC 3339, or without offset (read in `timezone`), to the
    /// minute as HTML `datetime-local` inputs send it, or a date alone.
    #[schema(required, value_type = String, example = "2027-03-14T19:30")]
    pub date: Option<String>,
    #[validate(custom(function = "valid_time_zone"))]
    /// IANA time zone name (default `UTC`).
    #[schema(required = false, value_type = String, example = "Asia/Kolkata")]
    pub timezone: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub location: Option<Option<String>>,
    #[validate(custom(function = "valid_tags"))]
    /// At most 20, each 1–40 characters.
    #[schema(required = false, value_type = Vec<String>, max_items = 20)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[validate(custom(function = "valid_image_url"))]
    /// An http(s) URL or a bare image file name, at most 500 characters.
    #[schema(value_type = Option<String>, max_length = 500)]
    pub image_url: Option<Option<String>>,
    #[validate(range(min = 1, max = 100, message = "must be 1 to 100"))]
    #[schema(required = false, value_type = u32, minimum = 1, maximum = 100, default = 5)]
    pub rows: Option<u32>,
    #[validate(range(min = 1, max = 200, message = "must be 1 to 200"))]
    #[schema(required = false, value_type = u32, minimum = 1, maximum = 200, default = 10)]
    pub seats_per_row: Option<u32>,
    #[validate(custom(function = "valid_price"))]
    /// Per seat in major units, at most 2 decimals (default 500).
    #[schema(required = false, value_type = f64, minimum = 0)]
    pub price: Option<Number>,
    #[validate(custom(function = "valid_currency"))]
    /// ISO 4217 code (default `INR`).
    #[schema(required = false, value_type = String, min_length = 3, max_length = 3)]
    pub currency: Option<String>,
    /// A venue layout instead of the grid (`null` returns to the grid); its categories' prices
    /// are in `currency`, and `price` then shows the cheapest of them. Checked whole: every
    /// offending field is named, as `venue.sections[0].rows[2].seats`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<VenueSpec>)]
    pub venue: Option<Option<VenueSpec>>,
}

/// Trims a text field, treating blank as absent.
fn text(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl EventFields {
    /// Whether the seat layout is being changed relative to `event`.
    pub fn changes_layout(&self, event: &Event) -> bool {
        self.rows.is_some_and(|r| r != event.rows)
            || self.seats_per_row.is_some_and(|s| s != event.seats_per_row)
            || self
                .venue
                .as_ref()
                .is_some_and(|venue| match (venue, &event.venue) {
                    (Some(new), Some(old)) => !new.same_layout(old),
                    (new, old) => new.is_some() != old.is_some(),
                })
    }

    /// The problems of the venue sent, if any, named under `venue`.
    fn venue_problems(&self, problems: &mut FieldProblems) {
        if let Some(Some(venue)) = &self.venue
            && let Err(found) = venue.expand()
        {
            for (field, message) in found {
                problems
                    .entry(format!("venue.{field}"))
                    .or_default()
                    .push(message);
            }
        }
    }

    /// A new event from these fields (title and date required, the rest defaulted).
    pub fn create(self, id: String, organizer_id: String) -> Result<Event, FieldProblems> {
        let mut problems = self.problems();
        for (field, present) in [
            ("title", self.title.is_some()),
            ("date", self.date.is_some()),
        ] {
            if !present {
                problems
                    .entry(field.into())
                    .or_default()
                    .push("required".into());
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let base = Event {
            id,
            title: String::new(),
            description: None,
            date: String::new(),
            date_ms: 0,
            timezone: when::DEFAULT_TIME_ZONE.into(),
            location: None,
            tags: Vec::new(),
            image_url: None,
            organizer_id,
            rows: DEFAULT_ROWS,
            seats_per_row: DEFAULT_SEATS_PER_ROW,
            price_minor: DEFAULT_PRICE_MINOR,
            currency: DEFAULT_CURRENCY.into(),
            venue: None,
        };
        Ok(self.overlay(base))
    }

    /// `event` with these fields applied.
    pub fn update(self, event: Event) -> Result<Event, FieldProblems> {
        let problems = self.problems();
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(self.overlay(event))
    }

    /// Every rule broken, the venue's included.
    fn problems(&self) -> FieldProblems {
        let mut problems = self
            .validate()
            .err()
            .map(|errors| field_messages(&errors))
            .unwrap_or_default();
        self.venue_problems(&mut problems);
        problems
    }

    /// Applies validated fields; parsing cannot fail here any more.
    fn overlay(self, mut event: Event) -> Event {
        if let Some(title) = text(self.title) {
            event.title = title;
        }
        if let Some(description) = self.description {
            event.description = text(description);
        }
        if let Some((_, name)) = self.timezone.and_then(|t| when::time_zone(&t).ok()) {
            event.timezone = name;
        }
        if let Some(date) = self.date {
            let zone = when::time_zone(&event.timezone)
                .map(|(zone, _)| zone)
                .unwrap_or(when::TimeZone::UTC);
            event.date_ms = when::parse_millis(&date, &zone).unwrap_or(event.date_ms);
            event.date = when::format_millis(event.date_ms);
        }
        if let Some(location) = self.location {
            event.location = text(location);
        }
        if let Some(tags) = self.tags {
            let mut clean: Vec<String> = Vec::new();
            for tag in tags.iter().map(|t| t.trim().to_string()) {
                if !clean.contains(&tag) {
                    clean.push(tag);
                }
            }
            event.tags = clean;
        }
        if let Some(image_url) = self.image_url {
            event.image_url = text(image_url);
        }
        if let Some(rows) = self.rows {
            event.rows = rows;
        }
        if let Some(seats) = self.seats_per_row {
            event.seats_per_row = seats;
        }
        if let Some(price) = self.price {
            event.price_minor = money::parse_minor(&price).unwrap_or(event.price_minor);
        }
        if let Some(currency) = self.currency {
            event.currency = currency.to_ascii_uppercase();
        }
        if let Some(venue) = self.venue {
            event.venue = venue;
        }
        if let Some(cheapest) = event.venue.as_ref().and_then(cheapest) {
            event.price_minor = cheapest;
        }
        event
    }
}

/// The lowest price of the venue's categories (checked already, so each parses).
pub fn cheapest(venue: &VenueSpec) -> Option<i64> {
    venue
        .categories
        .iter()
        .filter_map(|c| money::parse_minor(&c.price).ok())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn fields(value: Value) -> EventFields {
        serde_json::from_value(value).unwrap()
    }

    fn failing(value: Value) -> Vec<String> {
        let errors = fields(value)
            .create("e".into(), "o".into())
            .expect_err("must be refused");
        errors.into_keys().collect()
    }

    #[test]
    fn a_minimal_event_gets_the_defaults() {
        let event = fields(json!({"title": " Gig ", "date": "2026-12-01"}))
            .create("e1".into(), "o1".into())
            .unwrap();
        assert_eq!(event.title, "Gig");
        assert_eq!((event.rows, event.seats_per_row), (5, 10));
        assert_eq!(event.price_minor, 50_000);
        assert_eq!(event.currency, "INR");
        let view = serde_json::to_value(event.view()).unwrap();
        assert_eq!(view["price"], json!(500));
        assert_eq!(view["description"], Value::Null);
    }

    #[test]
    fn every_rule_names_its_field() {
        assert_eq!(failing(json!({})), vec!["date", "title"]);
        let cases = [
            (json!({"title": ""}), "title"),
            (json!({"title": "t".repeat(201)}), "title"),
            (json!({"description": "d".repeat(2001)}), "description"),
            (json!({"date": "soon"}), "date"),
            (json!({"location": "l".repeat(501)}), "location"),
            (json!({"tags": vec!["t"; 21]}), "tags"),
            (json!({"tags": ["t".repeat(41)]}), "tags"),
            (json!({"tags": [" "]}), "tags"),
            (json!({"imageUrl": "javascript:alert(1)"}), "imageUrl"),
            (json!({"imageUrl": "poster.exe"}), "imageUrl"),
            (json!({"rows": 0}), "rows"),
            (json!({"rows": 101}), "rows"),
            (json!({"seatsPerRow": 201}), "seatsPerRow"),
            (json!({"price": -1}), "price"),
            (json!({"price": 1.234}), "price"),
            (json!({"currency": "RUPEE"}), "currency"),
        ];
        for (mut value, field) in cases {
            if value.get("title").is_none() {
                value["title"] = json!("ok");
            }
            if value.get("date").is_none() {
                value["date"] = json!("2026-12-01");
            }
            let names = failing(value.clone());
            assert_eq!(names, vec![field.to_string()], "{value}");
        }
    }

    #[test]
    fn updates_take_any_subset_and_null_clears() {
        let event = fields(json!({"title": "Gig", "date": "2026-12-01", "description": "loud", "imageUrl": "gig.png"}))
            .create("e1".into(), "o1".into())
            .unwrap();
        let updated = fields(json!({"description": null, "price": 12.5, "currency": "usd"}))
            .update(event.clone())
            .unwrap();
        assert_eq!(updated.description, None);
        assert_eq!(updated.image_url.as_deref(), Some("gig.png"));
        assert_eq!(
            (updated.price_minor, updated.currency.as_str()),
            (1_250, "USD")
        );
        assert_eq!(updated.title, "Gig");
        assert!(fields(json!({"rows": 7})).changes_layout(&event));
        assert!(!fields(json!({"rows": 5, "title": "x"})).changes_layout(&event));
    }

    fn theatre() -> Value {
        json!({
            "categories": [
                {"key": "premium", "name": "Premium", "price": 1200},
                {"key": "standard", "name": "Standard", "price": 650.5}
            ],
            "sections": [{"key": "stalls", "name": "Stalls", "category": "standard", "rows": [
                {"label": "A", "category": "premium", "seats": "1-6 | 7-12"},
                {"label": "B", "seats": "1-12"}
            ]}]
        })
    }

    #[test]
    fn a_venue_event_shows_its_cheapest_price() {
        let event = fields(json!({"title": "Play", "date": "2027-01-01", "venue": theatre()}))
            .create("e1".into(), "o1".into())
            .unwrap();
        assert!(event.venue.is_some());
        assert_eq!(event.price_minor, 65_050);
        let view = serde_json::to_value(event.view()).unwrap();
        assert_eq!(
            view["venue"]["sections"][0]["rows"][0]["seats"],
            "1-6 | 7-12"
        );
        assert!(fields(json!({"venue": null})).changes_layout(&event));
        assert!(!fields(json!({"venue": theatre()})).changes_layout(&event));
        let grid = fields(json!({"venue": null})).update(event).unwrap();
        assert_eq!(grid.venue, None);
    }

    #[test]
    fn every_venue_problem_is_named_with_the_other_fields() {
        let mut venue = theatre();
        venue["sections"][0]["rows"][1]["seats"] = json!("1-");
        venue["categories"][1]["key"] = json!("premium");
        let names = failing(json!({"title": "", "date": "2027-01-01", "venue": venue}));
        assert_eq!(
            names,
            [
                "title",
                "venue.categories[1].key",
                "venue.sections[0].category",
                "venue.sections[0].rows[1].seats",
            ]
        );
    }
}
