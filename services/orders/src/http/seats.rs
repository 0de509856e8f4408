//! The seat map of an event.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use crate::AppState;
use crate::error::OrdersError;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeatView {
    seat_id: String,
    row: u32,
    number: u32,
    state: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatMap {
    event_id: String,
    seats: Vec<SeatView>,
}

/// `GET /seats/{eventId}` (public): every seat with its state, sold seats from the store and
/// held seats from the TTL store in one round trip. Serialised from plain structs: a map of
/// 10,000 seats is built without a JSON tree in between.
pub async fn seat_map(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Json<SeatMap>, OrdersError> {
    let event_id = super::event_id(&event_id)?;
    let layout = state.layout(&event_id).await?;
    let (sold, held) = tokio::try_join!(
        async {
            state
                .orders
                .sold_seats(&event_id)
                .await
                .map_err(OrdersError::from)
        },
        async {
            state
                .holds
                .held_seats(&layout)
                .await
                .map_err(OrdersError::from)
        },
    )?;
    let seats = layout
        .seats()
        .map(|seat| {
            let seat_id = seat.id();
            let state = if sold.contains(&seat_id) {
                "reserved"
            } else if held.contains(&seat_id) {
                "held"
            } else {
                "available"
            };
            SeatView {
                seat_id,
                row: seat.row,
                number: seat.number,
                state,
            }
        })
        .collect();
    Ok(Json(SeatMap { event_id, seats }))
}
