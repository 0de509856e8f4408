//! `GET /events/{eventId}/sales`: the organizer's sales view (see [`crate::sales`]).

use axum::Json;
use axum::extract::{Path, State};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;

use super::event_id;
use crate::domain::access::runs_event;
use crate::error::OrdersError;
use crate::sales::{self, SalesReport};
use crate::state::AppState;

/// The event's seats sold, held and available, its waitlist, revenue and refunds by currency,
/// cancellations and sales per hour. For the event's organizer and admins.
#[utoipa::path(get, path = "/events/{event_id}/sales", tag = "orders",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 200, description = "The figures at the event's current availability version", body = SalesReport),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer nor an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn sales(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<Json<SalesReport>, OrdersError> {
    let event_id = event_id(&event)?;
    let layout = state.layouts.existing(&event_id).await?;
    if !runs_event(&caller, Some(&layout)) {
        return Err(OrdersError::NotOrganizer);
    }
    let report = sales::report(&state.sales, &layout).await?;
    Ok(Json(SalesReport::clone(&report)))
}
