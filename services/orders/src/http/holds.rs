//! Taking, reading, refreshing and releasing seat holds.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::AuthUser;
use holdfast_common::extract::ValidJson;
use serde::Deserialize;
use serde_json::{Value, json};
use validator::Validate;

use super::may_use;
use crate::AppState;
use crate::domain::hold::{Hold, HoldError};
use crate::error::OrdersError;

#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct HoldRequest {
    #[validate(required(message = "required"))]
    event_id: Option<String>,
    #[validate(required(message = "required"))]
    seat_ids: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    #[validate(range(min = 1, max = 86400, message = "must be 1 to 86400 seconds"))]
    extend_seconds: Option<u64>,
}

impl From<HoldError> for OrdersError {
    fn from(error: HoldError) -> Self {
        match error {
            HoldError::Invalid(message) => Self::InvalidSeats(message),
            HoldError::Conflict(seats) => Self::ConflictSeats(seats),
            HoldError::TooManyHolds(n) => Self::TooManyHolds(n),
            // A layout that changed again right after it was read again is still changing.
            HoldError::LayoutChanging | HoldError::StaleLayout => Self::LayoutChanging,
            HoldError::Store(e) => Self::Kv(e),
            HoldError::Orders(e) => Self::Store(e),
        }
    }
}

/// `POST /holds`: all requested seats or none.
pub async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    ValidJson(request): ValidJson<HoldRequest>,
) -> Result<Response, OrdersError> {
    let event_id = super::event_id(&request.event_id.unwrap_or_default())?;
    let seat_ids = request.seat_ids.unwrap_or_default();
    let layout = state.layout(&event_id).await?;
    let seats = state.holds.check_request(&layout, seat_ids.clone())?;
    let mut taken = state.holds.take(caller.id(), &layout, seats).await;
    if matches!(taken, Err(HoldError::StaleLayout)) {
        // This replica's copy of the layout predates a change: check the seats against the
        // current layout and try once more.
        state.layouts.invalidate(&event_id);
        let layout = state.layout(&event_id).await?;
        let seats = state.holds.check_request(&layout, seat_ids)?;
        taken = state.holds.take(caller.id(), &layout, seats).await;
    }
    let hold = match taken {
        Ok(hold) => hold,
        Err(HoldError::Conflict(seats)) => {
            state.metrics.hold_conflicts.inc();
            return Err(OrdersError::ConflictSeats(seats));
        }
        Err(other) => return Err(other.into()),
    };
    state.metrics.holds_taken.inc();
    state.live.invalidate(&event_id);
    state
        .live
        .watch(&event_id, state.settings.orders.hold_max_lifetime);
    state.announce("hold.created", &hold);
    Ok((
        StatusCode::CREATED,
        Json(json!({"holdId": hold.hold_id, "expiresInSeconds": hold.ttl_seconds()})),
    )
        .into_response())
}

/// The hold if `caller` may use it; otherwise (or when gone) 404.
async fn usable(state: &AppState, caller: &AuthUser, hold_id: &str) -> Result<Hold, OrdersError> {
    match state.holds.get(hold_id).await? {
        Some(hold) if may_use(caller, &hold) => Ok(hold),
        _ => Err(OrdersError::HoldGone),
    }
}

/// `GET /holds/{holdId}/ttl`: seconds left, 0 when gone (or not the caller's, which is the
/// same thing from where they stand).
pub async fn ttl(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(hold_id): Path<String>,
) -> Result<Json<Value>, OrdersError> {
    let ttl = match usable(&state, &caller, &hold_id).await {
        Ok(hold) => hold.ttl_seconds(),
        Err(OrdersError::HoldGone) => 0,
        Err(other) => return Err(other),
    };
    Ok(Json(json!({"holdId": hold_id, "ttl": ttl})))
}

/// `GET /holds/{holdId}/details`
pub async fn details(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(hold_id): Path<String>,
) -> Result<Json<Value>, OrdersError> {
    let hold = usable(&state, &caller, &hold_id).await?;
    Ok(Json(json!({
        "holdId": hold.hold_id,
        "eventId": hold.event_id,
        "seatIds": hold.seat_ids,
        "ttl": hold.ttl_seconds(),
    })))
}

/// `POST /holds/{holdId}/refresh` with an optional `{extendSeconds}`.
pub async fn refresh(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(hold_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, OrdersError> {
    // The body is optional: an empty one means "the default extension".
    let request: RefreshRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            holdfast_common::error::ApiError::bad_request(
                "INVALID_JSON",
                format!("malformed JSON: {e}"),
            )
        })?
    };
    request.validate()?;
    let hold = usable(&state, &caller, &hold_id).await?;
    let refreshed = state
        .holds
        .refresh(hold, request.extend_seconds.map(Duration::from_secs))
        .await?
        .ok_or(OrdersError::HoldGone)?;
    Ok(Json(
        json!({"holdId": refreshed.hold_id, "ttl": refreshed.ttl_seconds()}),
    ))
}

/// `DELETE /holds/{holdId}`: frees every seat of the hold.
pub async fn release(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(hold_id): Path<String>,
) -> Result<StatusCode, OrdersError> {
    let hold = usable(&state, &caller, &hold_id).await?;
    state.holds.release(&hold).await?;
    state.live.invalidate(&hold.event_id);
    state.announce("hold.released", &hold);
    Ok(StatusCode::NO_CONTENT)
}
