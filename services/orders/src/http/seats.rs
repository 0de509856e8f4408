//! The seat map of an event.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::check_event_id;
use crate::AppState;
use crate::error::OrdersError;

/// `GET /seats/{eventId}` (public): every seat with its state, sold seats from the store and
/// held seats from the TTL store in one round trip.
pub async fn seat_map(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, OrdersError> {
    check_event_id(&event_id)?;
    let layout = state
        .layouts
        .get(&event_id)
        .await?
        .ok_or(OrdersError::EventNotFound)?;
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
    let seats: Vec<Value> = layout
        .seats()
        .map(|seat| {
            let id = seat.id();
            let status = if sold.contains(&id) {
                "reserved"
            } else if held.contains(&id) {
                "held"
            } else {
                "available"
            };
            json!({"seatId": id, "row": seat.row, "number": seat.number, "state": status})
        })
        .collect();
    Ok(Json(json!({ "eventId": event_id, "seats": seats })))
}
