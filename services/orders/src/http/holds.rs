//! Taking, reading, refreshing and releasing seat holds.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use holdfast_common::extract::ValidJson;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::queue::AdmissionPass;
use crate::domain::hold::{BestAsk, Hold};
use crate::domain::ids::{self, SeatId};
use crate::error::OrdersError;
use crate::holding;
use crate::state::AppState;

/// Seats to hold: all of them or none.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldRequest {
    #[validate(required(message = "required"))]
    #[schema(required, value_type = String, example = "6650c0ffee0000000000abcd")]
    event_id: Option<String>,
    /// Seat ids `R<row>-S<number>`, 1 to `MAX_SEATS_PER_HOLD` of them.
    #[validate(required(message = "required"))]
    #[schema(required, value_type = Vec<String>, example = json!(["R1-S1", "R1-S2"]))]
    seat_ids: Option<Vec<String>>,
}

/// An optional body of a hold refresh.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    /// Seconds to add (capped per call and by the hold's total lifetime).
    #[validate(range(min = 1, max = 86400, message = "must be 1 to 86400 seconds"))]
    #[schema(value_type = u64, minimum = 1, maximum = 86400, example = 120)]
    extend_seconds: Option<u64>,
}

/// A new hold.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"holdId": "3f2b8c1e-5d4a-4e8f-9b7a-1c2d3e4f5a6b", "expiresInSeconds": 300}))]
pub struct HoldCreated {
    hold_id: String,
    expires_in_seconds: u64,
}

/// The time a hold has left.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"holdId": "3f2b8c1e-5d4a-4e8f-9b7a-1c2d3e4f5a6b", "ttl": 583}))]
pub struct HoldTtl {
    hold_id: String,
    /// Seconds left; 0 when the hold is gone.
    ttl: u64,
}

/// A hold and what it holds.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldDetails {
    hold_id: String,
    event_id: String,
    seat_ids: Vec<String>,
    ttl: u64,
}

/// The `{holdId}` of a hold's path.
#[derive(IntoParams)]
#[into_params(names("hold_id"), parameter_in = Path)]
#[allow(dead_code)]
pub struct HoldId(String);

/// Holds seats for the caller: all requested seats or none. The hold expires unless bought or
/// refreshed.
#[utoipa::path(post, path = "/holds", tag = "holds", request_body = HoldRequest,
    params(("Admission-Pass" = Option<String>, Header, description = "The buyer's admission, on an event sold through an admission queue")),
    responses(
        (status = 201, description = "Held", body = HoldCreated),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED`, `INVALID_ID`, `INVALID_SEATS` (unknown seat, duplicates, more than `MAX_SEATS_PER_HOLD`)", body = ErrorBody),
        (status = 403, description = "`ADMISSION_REQUIRED`, `ADMISSION_EXPIRED` (with `details.expiredAt`): the event sells through an admission queue", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
        (status = 409, description = "`CONFLICT_SEATS` with `details.conflicts` (and a top-level `conflicts`); `HOLD_LIMIT`; `LAYOUT_CHANGING`", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    pass: AdmissionPass,
    ValidJson(request): ValidJson<HoldRequest>,
) -> Result<Response, OrdersError> {
    let event_id = super::event_id(&request.event_id.unwrap_or_default())?;
    let seat_ids = SeatId::all(&request.seat_ids.unwrap_or_default());
    let hold = holding::hold(
        &state.holding,
        caller.id(),
        &event_id,
        seat_ids,
        pass.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(HoldCreated {
            expires_in_seconds: hold.ttl_seconds(),
            hold_id: hold.hold_id.into(),
        }),
    )
        .into_response())
}

/// A best-available request: `count` seats side by side in one row of a venue event.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"eventId": "6650c0ffee0000000000abcd", "count": 2, "category": "premium"}))]
pub struct BestHoldRequest {
    #[validate(required(message = "required"))]
    #[schema(required, value_type = String, example = "6650c0ffee0000000000abcd")]
    event_id: Option<String>,
    /// How many seats, 1 to `MAX_SEATS_PER_HOLD`.
    #[validate(
        required(message = "required"),
        range(min = 1, message = "must be at least 1")
    )]
    #[schema(required, value_type = u32, minimum = 1, example = 2)]
    count: Option<u32>,
    /// Only seats of this price category (its key).
    #[validate(length(min = 1, max = 16, message = "must be 1 to 16 characters"))]
    #[schema(example = "premium")]
    category: Option<String>,
    /// Only seats of this section (its key).
    #[validate(length(min = 1, max = 16, message = "must be 1 to 16 characters"))]
    section: Option<String>,
    /// Include at least one wheelchair space (and companion seats may be given beside it).
    /// Without it wheelchair spaces and companion seats are never given.
    #[serde(default)]
    accessible: bool,
    /// When no row has `count` seats side by side, give the best seats apart rather than
    /// none (the answer says `split: true`).
    #[serde(default)]
    allow_split: bool,
}

/// A hold of the best available seats.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"holdId": "3f2b8c1e-5d4a-4e8f-9b7a-1c2d3e4f5a6b", "expiresInSeconds": 300,
    "eventId": "6650c0ffee0000000000abcd", "seatIds": ["stalls-C-7", "stalls-C-8"], "split": false}))]
pub struct BestHold {
    hold_id: String,
    expires_in_seconds: u64,
    event_id: String,
    /// The seats held, in venue order.
    seat_ids: Vec<String>,
    /// Whether the seats are not side by side in one row (only with `allowSplit`).
    split: bool,
}

/// Holds the best available seats of a venue event for the caller in one atomic step: `count`
/// seats side by side in one row, front rows and the middle of the row first (as the venue
/// ranks them), never leaving a single seat stranded beside them when an equally good place
/// does not; with `allowSplit`, the best seats apart when no row has room. The answer is a
/// hold like any other: buy it, refresh it or release it.
#[utoipa::path(post, path = "/holds/best", tag = "holds", request_body = BestHoldRequest,
    params(("Admission-Pass" = Option<String>, Header, description = "The buyer's admission, on an event sold through an admission queue")),
    responses(
        (status = 201, description = "Held", body = BestHold),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED` (`eventId` of a grid event, `count`, an unknown `category` or `section`), `INVALID_ID`", body = ErrorBody),
        (status = 403, description = "`ADMISSION_REQUIRED`, `ADMISSION_EXPIRED` (with `details.expiredAt`): the event sells through an admission queue", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
        (status = 409, description = "`NO_SEATS_AVAILABLE` with `details.available` (seats left per category and section); `HOLD_LIMIT`; `LAYOUT_CHANGING`; `CONFLICT_SEATS` when other buyers kept taking the seats found (retry)", body = ErrorBody),
    ))]
pub async fn best(
    State(state): State<AppState>,
    caller: AuthUser,
    pass: AdmissionPass,
    ValidJson(request): ValidJson<BestHoldRequest>,
) -> Result<Response, OrdersError> {
    let event_id = super::event_id(&request.event_id.unwrap_or_default())?;
    let ask = BestAsk {
        count: request.count.unwrap_or_default() as usize,
        category: request.category,
        section: request.section,
        accessible: request.accessible,
        allow_split: request.allow_split,
    };
    let (hold, split) = holding::hold_best(
        &state.holding,
        caller.id(),
        &event_id,
        &ask,
        pass.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(BestHold {
            expires_in_seconds: hold.ttl_seconds(),
            event_id: hold.event_id.to_string(),
            seat_ids: hold.seat_ids.iter().map(SeatId::to_string).collect(),
            hold_id: hold.hold_id.into(),
            split,
        }),
    )
        .into_response())
}

/// The hold if `caller` may use it; otherwise (or when gone) 404.
async fn usable(state: &AppState, caller: &AuthUser, hold_id: &str) -> Result<Hold, OrdersError> {
    match state.holds.get(&ids::HoldId::named(hold_id)).await? {
        Some(hold) if hold.may_be_used_by(caller) => Ok(hold),
        _ => Err(OrdersError::NoSuchHold),
    }
}

/// Seconds a hold has left: 0 when gone (or not the caller's, which is the same thing from
/// where they stand).
#[utoipa::path(get, path = "/holds/{hold_id}/ttl", tag = "holds", params(HoldId),
    responses((status = 200, description = "Seconds left", body = HoldTtl)))]
pub async fn ttl(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(hold_id): Path<String>,
) -> Result<Json<HoldTtl>, OrdersError> {
    let ttl = match usable(&state, &caller, &hold_id).await {
        Ok(hold) => hold.ttl_seconds(),
        Err(OrdersError::NoSuchHold) => 0,
        Err(other) => return Err(other),
    };
    Ok(Json(HoldTtl { hold_id, ttl }))
}

/// One of the caller's live holds.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldSeats {
    hold_id: String,
    event_id: String,
    seat_ids: Vec<String>,
    /// Seconds left.
    ttl: u64,
    /// `true` when the event's waitlist offered these seats; absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    offer: bool,
}

/// The caller's live holds, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldList {
    holds: Vec<HeldSeats>,
}

/// The caller's live holds, including seats the waitlist offered them (`offer: true`).
#[utoipa::path(get, path = "/holds", tag = "holds",
    responses((status = 200, description = "Oldest first", body = HeldList)))]
pub async fn mine(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<HeldList>, OrdersError> {
    let holds = state.holds.of_user(caller.id()).await?;
    Ok(Json(HeldList {
        holds: holds
            .into_iter()
            .map(|hold| HeldSeats {
                ttl: hold.ttl_seconds(),
                offer: hold.offer,
                hold_id: hold.hold_id.into(),
                event_id: hold.event_id.into(),
                seat_ids: SeatId::texts(&hold.seat_ids),
            })
            .collect(),
    }))
}

/// A hold of the caller's: its event, seats and time left.
#[utoipa::path(get, path = "/holds/{hold_id}/details", tag = "holds", params(HoldId),
    responses(
        (status = 200, description = "The hold", body = HoldDetails),
        (status = 404, description = "`NOT_FOUND`: gone or not yours", body = ErrorBody),
    ))]
pub async fn details(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(hold_id): Path<String>,
) -> Result<Json<HoldDetails>, OrdersError> {
    let hold = usable(&state, &caller, &hold_id).await?;
    Ok(Json(HoldDetails {
        ttl: hold.ttl_seconds(),
        hold_id: hold.hold_id.into(),
        event_id: hold.event_id.into(),
        seat_ids: SeatId::texts(&hold.seat_ids),
    }))
}

/// Extends a hold, by `extendSeconds` or the default; capped per call and in total lifetime.
/// The body is optional.
#[utoipa::path(post, path = "/holds/{hold_id}/refresh", tag = "holds",
    params(HoldId, ("Admission-Pass" = Option<String>, Header, description = "The buyer's admission, on an event sold through an admission queue")),
    request_body(content = Option<RefreshRequest>, description = "Optional; empty means the default extension"),
    responses(
        (status = 200, description = "Extended", body = HoldTtl),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED`", body = ErrorBody),
        (status = 403, description = "`ADMISSION_REQUIRED`, `ADMISSION_EXPIRED` (with `details.expiredAt`): the event sells through an admission queue", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: gone or not yours", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    caller: AuthUser,
    pass: AdmissionPass,
    Path(hold_id): Path<String>,
    body: Bytes,
) -> Result<Json<HoldTtl>, OrdersError> {
    // The body is optional: an empty one means "the default extension".
    let request: RefreshRequest = super::optional_json(&body)?;
    let hold = usable(&state, &caller, &hold_id).await?;
    let extend = request.extend_seconds.map(Duration::from_secs);
    let refreshed = holding::refresh(&state.holding, hold, extend, caller.id(), pass.as_deref())
        .await?
        .ok_or(OrdersError::NoSuchHold)?;
    Ok(Json(HoldTtl {
        ttl: refreshed.ttl_seconds(),
        hold_id: refreshed.hold_id.into(),
    }))
}

/// The seats a hold should have instead.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"seatIds": ["R1-S2", "R1-S3"]}))]
pub struct ChangeRequest {
    /// Every seat the hold should have: the ones it keeps and the ones to add (the others are
    /// freed), 1 to `MAX_SEATS_PER_HOLD`.
    #[validate(required(message = "required"))]
    #[schema(required, value_type = Vec<String>)]
    seat_ids: Option<Vec<String>>,
}

/// Changes a hold's seats in one step: adds seats, drops some, or swaps some for others. The
/// seats it keeps stay held throughout; if a seat to add is taken, nothing changes. The hold
/// keeps its id and expiry.
#[utoipa::path(put, path = "/holds/{hold_id}/seats", tag = "holds",
    params(HoldId, ("Admission-Pass" = Option<String>, Header, description = "The buyer's admission, on an event sold through an admission queue")),
    request_body = ChangeRequest,
    responses(
        (status = 200, description = "The hold with its new seats", body = HoldDetails),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED`, `INVALID_SEATS` (unknown, repeated, too many, a companion seat without its space, a waitlist offer)", body = ErrorBody),
        (status = 403, description = "`ADMISSION_REQUIRED`, `ADMISSION_EXPIRED` (with `details.expiredAt`): the event sells through an admission queue", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: gone or not yours", body = ErrorBody),
        (status = 409, description = "`CONFLICT_SEATS` with `details.conflicts`: a seat to add is taken; the hold is unchanged", body = ErrorBody),
    ))]
pub async fn change_seats(
    State(state): State<AppState>,
    caller: AuthUser,
    pass: AdmissionPass,
    Path(hold_id): Path<String>,
    ValidJson(request): ValidJson<ChangeRequest>,
) -> Result<Json<HoldDetails>, OrdersError> {
    let hold = usable(&state, &caller, &hold_id).await?;
    let seat_ids = SeatId::all(&request.seat_ids.unwrap_or_default());
    let hold =
        holding::change(&state.holding, hold, seat_ids, caller.id(), pass.as_deref()).await?;
    Ok(Json(HoldDetails {
        ttl: hold.ttl_seconds(),
        hold_id: hold.hold_id.into(),
        event_id: hold.event_id.into(),
        seat_ids: SeatId::texts(&hold.seat_ids),
    }))
}

/// Releases a hold: every seat of it is free again.
#[utoipa::path(delete, path = "/holds/{hold_id}", tag = "holds", params(HoldId),
    responses(
        (status = 204, description = "Released"),
        (status = 404, description = "`NOT_FOUND`: gone or not yours", body = ErrorBody),
    ))]
pub async fn release(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(hold_id): Path<String>,
) -> Result<StatusCode, OrdersError> {
    let hold = usable(&state, &caller, &hold_id).await?;
    holding::release(&state.holding, &hold).await?;
    Ok(StatusCode::NO_CONTENT)
}
