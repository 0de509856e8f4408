//! Routes for the other services only (under `/internal`, which the gateway never forwards):
//! the layout lock the events service takes around a change of an event's seats or its
//! deletion.
//!
//! `POST /internal/events/{eventId}/layout-lock` answers `{"token"}` when the lock is granted:
//! no seat is held (the board refuses it atomically otherwise) and the order store has no sold
//! seat. Otherwise `{"heldSeats", "soldSeats"}` (the lock is not kept) or `{"busy": true}` while
//! another change holds it. `DELETE /internal/events/{eventId}/layout-lock/{token}` releases it
//! and bumps the layout version, so every layout read before is stale; a lock nobody releases
//! runs out after [`LAYOUT_LOCK_TTL`].

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::OrdersError;
use crate::seat_changes::SeatChange;
use crate::state::AppState;
use crate::store::board::LayoutLock;

/// How long a layout lock lasts unless released: longer than writing an event takes.
pub const LAYOUT_LOCK_TTL: Duration = Duration::from_secs(30);

/// `POST /internal/events/{eventId}/layout-lock`
pub async fn lock_layout(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, OrdersError> {
    let event_id = super::event_id(&event_id)?;
    let token = uuid::Uuid::new_v4().to_string();
    let board = state.holds.board();
    match board
        .lock_layout(&event_id, &token, LAYOUT_LOCK_TTL)
        .await?
    {
        LayoutLock::Locked => {}
        LayoutLock::SeatsHeld(held) => {
            return Ok(Json(json!({ "heldSeats": held, "soldSeats": 0 })));
        }
        LayoutLock::Busy => return Ok(Json(json!({ "busy": true }))),
    }
    // No hold can be taken now, and a sale needs a hold: the sold seats cannot change while
    // they are counted.
    let sold = match state.stores.orders.sold_seats(&event_id).await {
        Ok(sold) => sold.len(),
        Err(error) => {
            board.unlock_layout(&event_id, &token).await?;
            return Err(error.into());
        }
    };
    if sold > 0 {
        board.unlock_layout(&event_id, &token).await?;
        return Ok(Json(json!({ "heldSeats": 0, "soldSeats": sold })));
    }
    Ok(Json(json!({ "token": token })))
}

/// `DELETE /internal/events/{eventId}/layout-lock/{token}`
pub async fn unlock_layout(
    State(state): State<AppState>,
    Path((event_id, token)): Path<(String, String)>,
) -> Result<StatusCode, OrdersError> {
    let event_id = super::event_id(&event_id)?;
    state.holds.board().unlock_layout(&event_id, &token).await?;
    state.layouts.invalidate(&event_id);
    state.changes.after(SeatChange::Refreshed(&event_id)).await;
    Ok(StatusCode::NO_CONTENT)
}
