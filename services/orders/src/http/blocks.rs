//! `/events/{eventId}/blocks`: the seats the organizer keeps back (see [`crate::blocks`]).

use axum::Json;
use axum::extract::{Path, State};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use holdfast_common::extract::ValidJson;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::event_id;
use crate::blocks;
use crate::domain::ids::SeatId;
use crate::error::OrdersError;
use crate::state::AppState;

/// Seats to block or give back.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"seatIds": ["stalls-A-7", "stalls-A-8"]}))]
pub struct BlockRequest {
    /// 1 to 1,000 seats of the event.
    #[validate(required(message = "required"))]
    #[schema(required, value_type = Vec<String>)]
    seat_ids: Option<Vec<String>>,
}

/// The seats of an event its organizer keeps back.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Blocked {
    event_id: String,
    /// Every blocked seat, in id order.
    seat_ids: Vec<String>,
}

fn answer(event_id: &str, seats: Vec<SeatId>) -> Json<Blocked> {
    Json(Blocked {
        event_id: event_id.to_string(),
        seat_ids: SeatId::texts(&seats),
    })
}

/// The event's blocked seats (its organizer, admins).
#[utoipa::path(get, path = "/events/{event_id}/blocks", tag = "orders",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 200, description = "The blocked seats", body = Blocked),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer nor an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<Json<Blocked>, OrdersError> {
    let event_id = event_id(&event)?;
    let seats = blocks::blocked(&state.blocks, &caller, &event_id).await?;
    Ok(answer(&event_id, seats))
}

/// Keeps seats back from sale — house seats, broken seats, camera positions — all of them or
/// none: no buyer can hold or buy them, maps show them unavailable, and the sales view counts
/// them apart.
#[utoipa::path(post, path = "/events/{event_id}/blocks", tag = "orders",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    request_body = BlockRequest,
    responses(
        (status = 200, description = "Every blocked seat now", body = Blocked),
        (status = 400, description = "`INVALID_ID`, `INVALID_JSON`, `VALIDATION_FAILED`, `INVALID_SEATS` (unknown, repeated, none or over 1,000)", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer nor an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
        (status = 409, description = "`CONFLICT_SEATS` with `details.conflicts`: held, sold or blocked already (nothing is blocked); `SEAT_ALREADY_RESERVED`; `HOLD_LIMIT`: too many blocks under way", body = ErrorBody),
    ))]
pub async fn block(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
    ValidJson(request): ValidJson<BlockRequest>,
) -> Result<Json<Blocked>, OrdersError> {
    let event_id = event_id(&event)?;
    let seat_ids = SeatId::all(&request.seat_ids.unwrap_or_default());
    let seats = blocks::block(&state.blocks, &caller, &event_id, seat_ids).await?;
    Ok(answer(&event_id, seats))
}

/// Gives blocked seats back to sale (seats that are not blocked are left as they are); the
/// waitlist is offered them first.
#[utoipa::path(post, path = "/events/{event_id}/blocks/release", tag = "orders",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    request_body = BlockRequest,
    responses(
        (status = 200, description = "Every seat still blocked", body = Blocked),
        (status = 400, description = "`INVALID_ID`, `INVALID_JSON`, `VALIDATION_FAILED`, `INVALID_SEATS`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer nor an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn release(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
    ValidJson(request): ValidJson<BlockRequest>,
) -> Result<Json<Blocked>, OrdersError> {
    let event_id = event_id(&event)?;
    let seat_ids = SeatId::all(&request.seat_ids.unwrap_or_default());
    let seats = blocks::unblock(&state.blocks, &caller, &event_id, seat_ids).await?;
    Ok(answer(&event_id, seats))
}
