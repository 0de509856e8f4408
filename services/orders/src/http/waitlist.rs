//! `POST/GET/DELETE /events/{eventId}/waitlist`: join, see your place, leave (see
//! [`crate::waitlist`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use holdfast_common::extract::ValidJson;
use holdfast_common::when::format_millis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::event_id;
use crate::domain::waitlist::Place;
use crate::error::OrdersError;
use crate::state::AppState;
use crate::waitlist;

/// How many seats to wait for.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinRequest {
    /// 1 to `MAX_SEATS_PER_HOLD`.
    #[validate(required(message = "required"))]
    #[schema(required, value_type = u32, minimum = 1, example = 2)]
    seats: Option<u64>,
}

/// Seats the waitlist holds for you until `expiresAt`; buy them with `holdId`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferView {
    hold_id: String,
    #[schema(format = DateTime)]
    expires_at: String,
}

/// Your entry on an event's waitlist.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitlistPlace {
    event_id: String,
    seats: usize,
    /// 1 for the first in line.
    position: usize,
    /// How many are on the waitlist.
    length: usize,
    #[schema(format = DateTime)]
    joined_at: String,
    /// Set while seats are offered to you.
    offer: Option<OfferView>,
}

impl From<Place> for WaitlistPlace {
    fn from(place: Place) -> Self {
        let entry = place.entry;
        Self {
            event_id: entry.event_id.into(),
            seats: entry.seats,
            position: place.position,
            length: place.length,
            joined_at: format_millis(entry.joined_at_ms),
            offer: entry.offer.map(|offer| OfferView {
                hold_id: offer.hold_id.into(),
                expires_at: format_millis(offer.until_ms),
            }),
        }
    }
}

/// Joins the event's waitlist (first come, first served; once per user) while fewer seats are
/// free than asked for. When seats come free, the first in line whose count fits is offered
/// them as a hold for `WAITLIST_OFFER_SECONDS`: it shows in `GET /holds` with `offer: true`.
#[utoipa::path(post, path = "/events/{event_id}/waitlist", tag = "waitlist",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    request_body = JoinRequest,
    responses(
        (status = 201, description = "Joined", body = WaitlistPlace),
        (status = 200, description = "Already on the waitlist: the entry as it is", body = WaitlistPlace),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED` (`seats` out of range), `INVALID_ID`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
        (status = 409, description = "`SEATS_AVAILABLE`: at least as many seats as asked for are free (how many in `details.available`): hold them instead", body = ErrorBody),
    ))]
pub async fn join(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
    ValidJson(request): ValidJson<JoinRequest>,
) -> Result<Response, OrdersError> {
    let event_id = event_id(&event)?;
    let max = state.settings.max_seats_per_hold;
    let seats = request
        .seats
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            holdfast_common::extract::field_error("seats", &format!("must be 1 to {max}"))
        })?;
    let (place, joined) = waitlist::join(&state.waitlist, &caller, &event_id, seats).await?;
    let status = if joined {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(WaitlistPlace::from(place))).into_response())
}

/// Your place on the event's waitlist.
#[utoipa::path(get, path = "/events/{event_id}/waitlist", tag = "waitlist",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 200, description = "Your entry", body = WaitlistPlace),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: you are not on it", body = ErrorBody),
    ))]
pub async fn place(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<Json<WaitlistPlace>, OrdersError> {
    let event_id = event_id(&event)?;
    Ok(Json(
        waitlist::place(&state.waitlist, &caller, &event_id)
            .await?
            .into(),
    ))
}

/// Leaves the event's waitlist; seats offered to you are released.
#[utoipa::path(delete, path = "/events/{event_id}/waitlist", tag = "waitlist",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 204, description = "Left"),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: you are not on it", body = ErrorBody),
    ))]
pub async fn leave(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<StatusCode, OrdersError> {
    let event_id = event_id(&event)?;
    waitlist::leave(&state.waitlist, &caller, &event_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
