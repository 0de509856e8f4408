//! The seat map of an event, and its live stream.
//!
//! `GET /seats/{eventId}` serves a map built once per availability version and shared by every
//! reader (see [`crate::live`]): `ETag` is the version, `If-None-Match` answers 304 with no body,
//! `Cache-Control: no-cache` makes browsers revalidate, and the body comes gzip- or
//! brotli-compressed when the client accepts it. `?view=compact` gives only the dimensions,
//! the version and the seats that are not available.
//!
//! `GET /seats/{eventId}/stream` is Server-Sent Events: a `snapshot` (the compact view) and then
//! a `seats` event per change, each with the version as its `id`, and a heartbeat comment every
//! 15 s. A client reconnecting with `Last-Event-ID` gets the changes it missed, or a fresh
//! snapshot when they are no longer remembered.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use holdfast_common::error::ErrorBody;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::{IntoParams, ToSchema};

use crate::domain::seat::Layout;
use crate::error::OrdersError;
use crate::live::{Encoding, SeatMap};
use crate::state::AppState;
use crate::store::board::{SeatDelta, SeatNews, SeatState};

/// How often an idle stream sends a comment, so proxies keep it open.
const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MapQuery {
    /// `full` (the default): every seat; `compact`: dimensions, version and only the seats
    /// that are not available.
    #[param(value_type = Option<String>, pattern = "^(full|compact)$")]
    view: Option<String>,
}

/// The `{event_id}` of a seat map's path.
#[derive(IntoParams)]
#[into_params(names("event_id"), parameter_in = Path)]
#[allow(dead_code)]
pub struct EventId(
    /// 24 hexadecimal digits.
    #[param(example = "6650c0ffee0000000000abcd")]
    String,
);

/// One Server-Sent Event of the seat stream.
#[derive(Serialize, ToSchema)]
#[schema(as = SeatStreamEvent)]
#[allow(dead_code)]
struct StreamEventSchema {
    /// `snapshot` (data: a `CompactSeatMap`) or `seats` (data: `{eventId, version, seats:
    /// [{seatId, state}]}`).
    #[schema(pattern = "^(snapshot|seats)$")]
    event: String,
    /// The availability version after this event.
    id: String,
    /// JSON.
    data: String,
}

/// Either map.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum MapSchema {
    Full(FullMapSchema),
    Compact(CompactMapSchema),
    Venue(VenueMapSchema),
    CompactVenue(CompactVenueMapSchema),
}

/// A price category of a venue map.
#[derive(Serialize, ToSchema)]
#[schema(as = MapCategory)]
#[allow(dead_code)]
pub struct MapCategorySchema {
    key: String,
    name: String,
    /// Per seat, in major units of the event's currency.
    #[schema(value_type = f64, minimum = 0)]
    price: serde_json::Number,
}

/// A section of a venue map.
#[derive(Serialize, ToSchema)]
#[schema(as = MapSection)]
#[allow(dead_code)]
pub struct MapSectionSchema {
    key: String,
    name: String,
}

/// The full seat map of a venue event (see [`crate::venue_views`]).
#[derive(Serialize, ToSchema)]
#[schema(as = VenueSeatMap)]
#[allow(dead_code)]
pub struct VenueMapSchema {
    #[serde(rename = "eventId")]
    event_id: String,
    /// `venue`.
    #[schema(pattern = "^venue$")]
    kind: String,
    categories: Vec<MapCategorySchema>,
    sections: Vec<MapSectionSchema>,
    seats: Vec<VenueSeatSchema>,
}

/// One seat of a venue map; the flags appear only when set.
#[derive(Serialize, ToSchema)]
#[schema(as = VenueSeat)]
#[allow(dead_code)]
pub struct VenueSeatSchema {
    /// `<section>-<row>-<seat>`.
    #[serde(rename = "seatId")]
    #[schema(example = "stalls-A-12")]
    seat_id: String,
    /// The section's key.
    section: String,
    /// The row's label.
    row: String,
    /// The seat's label in its row.
    label: String,
    /// The price category's key.
    category: String,
    state: SeatState,
    #[schema(required = false)]
    wheelchair: Option<bool>,
    /// The wheelchair space this companion seat belongs to.
    #[serde(rename = "companionOf")]
    #[schema(required = false)]
    companion_of: Option<String>,
    #[serde(rename = "restrictedView")]
    #[schema(required = false)]
    restricted_view: Option<bool>,
}

/// What is still available of a venue, per category and per section (keys).
#[derive(Serialize, ToSchema)]
#[schema(as = AvailableCounts)]
#[allow(dead_code)]
pub struct AvailableSchema {
    categories: std::collections::BTreeMap<String, u64>,
    sections: std::collections::BTreeMap<String, u64>,
}

/// The compact map of a venue event: the seats that are not available, and counts of what is.
#[derive(Serialize, ToSchema)]
#[schema(as = CompactVenueSeatMap)]
#[allow(dead_code)]
pub struct CompactVenueMapSchema {
    #[serde(rename = "eventId")]
    event_id: String,
    /// The availability version (also the `ETag`).
    version: u64,
    /// `venue`.
    #[schema(pattern = "^venue$")]
    kind: String,
    capacity: u64,
    categories: Vec<MapCategorySchema>,
    sections: Vec<MapSectionSchema>,
    available: AvailableSchema,
    /// Held seat ids.
    held: Vec<String>,
    /// Sold seat ids.
    reserved: Vec<String>,
}

/// The full seat map, as [`crate::live`] writes it.
#[derive(Serialize, ToSchema)]
#[schema(as = SeatMap)]
#[allow(dead_code)]
pub struct FullMapSchema {
    #[serde(rename = "eventId")]
    event_id: String,
    seats: Vec<SeatSchema>,
}

/// One seat of the full map.
#[derive(Serialize, ToSchema)]
#[schema(as = Seat)]
#[allow(dead_code)]
pub struct SeatSchema {
    /// `R<row>-S<number>`.
    #[serde(rename = "seatId")]
    #[schema(example = "R1-S2")]
    seat_id: String,
    #[schema(minimum = 1)]
    row: u32,
    #[schema(minimum = 1)]
    number: u32,
    state: SeatState,
}

/// The compact seat map: the seats that are not available, per row as runs of seat numbers
/// (`"3": "1-4,9"` is row 3, seats 1 to 4 and 9).
#[derive(Serialize, ToSchema)]
#[schema(as = CompactSeatMap, example = json!({
    "eventId": "6650c0ffee0000000000abcd", "version": 42, "rows": 5, "seatsPerRow": 10,
    "held": {"1": "3-4"}, "reserved": {"2": "1-2,7"}
}))]
#[allow(dead_code)]
pub struct CompactMapSchema {
    #[serde(rename = "eventId")]
    event_id: String,
    /// The availability version (also the `ETag`).
    version: u64,
    rows: u32,
    #[serde(rename = "seatsPerRow")]
    seats_per_row: u32,
    held: std::collections::BTreeMap<String, String>,
    /// Sold seats.
    reserved: std::collections::BTreeMap<String, String>,
}

/// The weak ETag of a view at a version.
fn etag(version: u64, compact: bool) -> String {
    if compact {
        format!("W/\"{version}c\"")
    } else {
        format!("W/\"{version}\"")
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.trim_start_matches("W/") == &etag[2..])
}

/// The seat map of an event (no authentication). It may be up to `SEAT_MAP_MAX_STALENESS_MS`
/// old; holds are the truth. Compressed when the client accepts gzip or brotli.
#[utoipa::path(get, path = "/seats/{event_id}", tag = "seats", params(EventId, MapQuery,
        ("If-None-Match" = Option<String>, Header, description = "An earlier `ETag`: 304 when unchanged")),
    responses(
        (status = 200, description = "The map: `SeatMap`, or `CompactSeatMap` with `view=compact`; for a venue event `VenueSeatMap` or `CompactVenueSeatMap`",
            body = MapSchema,
            headers(("etag" = String, description = "The availability version (weak)"))),
        (status = 304, description = "Unchanged since `If-None-Match`"),
        (status = 400, description = "`INVALID_ID`, `INVALID_QUERY`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn seat_map(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    Query(query): Query<MapQuery>,
    headers: HeaderMap,
) -> Result<Response, OrdersError> {
    let compact = match query.view.as_deref() {
        None | Some("full") => false,
        Some("compact") => true,
        Some(_) => {
            return Err(OrdersError::InvalidQuery(
                "view must be full or compact".into(),
            ));
        }
    };
    let event_id = super::event_id(&event_id)?;
    let layout = state.layouts.existing(&event_id).await?;
    let map = state
        .live
        .map(&state.holds, &layout, state.settings.seat_map_max_staleness)
        .await?;
    let tag = etag(map.version, compact);
    let mut response = if matches(&headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let accept = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let encoding = Encoding::negotiate(accept);
        let view = if compact { map.compact() } else { map.full() };
        let mut response = view.get(encoding).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(coding) = encoding.header_value() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    Ok(response)
}

/// One seat's new state, as streams send it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeatChangeView<'a> {
    seat_id: &'a str,
    state: SeatState,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeatsEvent<'a> {
    event_id: &'a str,
    version: u64,
    seats: Vec<SeatChangeView<'a>>,
}

fn seats_event(delta: &SeatDelta) -> Event {
    let body = SeatsEvent {
        event_id: &delta.event_id,
        version: delta.version,
        seats: delta
            .changes
            .iter()
            .map(|(seat_id, state)| SeatChangeView {
                seat_id,
                state: *state,
            })
            .collect(),
    };
    Event::default()
        .event("seats")
        .id(delta.version.to_string())
        .data(serde_json::to_string(&body).unwrap_or_default())
}

fn snapshot_event(map: &SeatMap) -> Event {
    let body = map.compact().get(Encoding::Identity);
    Event::default()
        .event("snapshot")
        .id(map.version.to_string())
        .data(String::from_utf8_lossy(&body))
}

/// How often, and how long apart, a resuming stream looks for this process's change log to
/// catch up with the board.
const RESUME_ATTEMPTS: usize = 10;
const RESUME_WAIT: Duration = Duration::from_millis(20);

/// The changes after `since` up to the board's current version, if this process remembers every
/// one of them. The log is fed by a background task and may trail the board by a moment after a
/// change, so it gets a few short chances before the stream falls back to a snapshot.
async fn changes_to_replay(
    state: &AppState,
    event_id: &crate::domain::ids::EventId,
    since: u64,
) -> Result<Option<Vec<Arc<SeatDelta>>>, OrdersError> {
    for _ in 0..RESUME_ATTEMPTS {
        let current = state.holds.board().version(event_id).await?;
        if since > current {
            return Ok(None); // an id this board never gave out
        }
        let Some(changes) = state.live.changes_since(event_id, since) else {
            return Ok(None);
        };
        if changes.last().map_or(since, |d| d.version) == current {
            return Ok(Some(changes));
        }
        tokio::time::sleep(RESUME_WAIT).await;
    }
    Ok(None)
}

/// What one open stream knows.
struct StreamState {
    state: AppState,
    layout: Layout,
    news: broadcast::Receiver<Arc<SeatNews>>,
    /// The version the client has seen.
    version: u64,
    /// Events to send before reading more news.
    pending: std::collections::VecDeque<Event>,
}

impl StreamState {
    /// Queues a fresh snapshot; on failure the stream ends (the client reconnects).
    async fn resnapshot(&mut self) -> bool {
        let map = self
            .state
            .live
            .map(&self.state.holds, &self.layout, Duration::ZERO)
            .await;
        match map {
            Ok(map) => {
                self.version = map.version;
                self.pending.push_back(snapshot_event(&map));
                true
            }
            Err(error) => {
                tracing::warn!(%error, event_id = %self.layout.event_id, "seat stream ends: no snapshot");
                false
            }
        }
    }

    /// The next event for the client; `None` ends the stream.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            let news = match self.news.recv().await {
                Ok(news) => news,
                Err(RecvError::Lagged(_)) => Arc::new(SeatNews::MayHaveMissed),
                Err(RecvError::Closed) => return None,
            };
            match &*news {
                SeatNews::Changed(delta) if delta.event_id == self.layout.event_id => {
                    if delta.version <= self.version {
                        continue; // already in what the client has
                    }
                    if delta.version == self.version + 1 {
                        self.version = delta.version;
                        self.pending.push_back(seats_event(delta));
                    } else if !self.resnapshot().await {
                        return None;
                    }
                }
                SeatNews::Changed(_) => {}
                SeatNews::MayHaveMissed => {
                    if !self.resnapshot().await {
                        return None;
                    }
                }
            }
        }
    }
}

/// Live seat changes as Server-Sent Events (no authentication): a `snapshot` event (the compact
/// map) and then a `seats` event per change (`{eventId, version, seats: [{seatId, state}]}`),
/// each with the version as its `id`, and a heartbeat comment every 15 s. Reconnecting with
/// `Last-Event-ID` replays the missed changes, or sends a fresh snapshot.
#[utoipa::path(get, path = "/seats/{event_id}/stream", tag = "seats", params(EventId,
        ("Last-Event-ID" = Option<u64>, Header, description = "The last version seen, to resume from")),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = StreamEventSchema),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, OrdersError> {
    let event_id = super::event_id(&event_id)?;
    let layout = state.layouts.existing(&event_id).await?;
    // Listen before looking, so no change falls between the two.
    let news = state.holds.board().changes();
    state
        .live
        .watch(&event_id, state.settings.hold_max_lifetime);
    let resume_from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut stream = StreamState {
        state: state.clone(),
        layout,
        news,
        version: 0,
        pending: Default::default(),
    };
    let replay = match resume_from {
        Some(since) => changes_to_replay(&state, &event_id, since)
            .await?
            .map(|changes| (since, changes)),
        None => None,
    };
    match replay {
        Some((since, changes)) => {
            stream.version = since;
            for delta in changes {
                stream.version = delta.version;
                stream.pending.push_back(seats_event(&delta));
            }
        }
        _ => {
            let map = state
                .live
                .map(&state.holds, &stream.layout, Duration::ZERO)
                .await?;
            stream.version = map.version;
            stream.pending.push_back(snapshot_event(&map));
        }
    }
    let events = futures_util::stream::unfold(stream, StreamState::next);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_is_compared_weakly() {
        let tag = etag(42, false);
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            matches(&headers, &tag)
        };
        assert!(with("W/\"42\""));
        assert!(with("\"42\""));
        assert!(with("\"7\", W/\"42\""));
        assert!(with("*"));
        assert!(!with("W/\"41\""));
        assert!(
            !with("W/\"42c\""),
            "the compact view is another representation"
        );
        assert!(!matches(&HeaderMap::new(), &tag));
    }
}
