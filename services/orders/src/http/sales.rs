//! `GET /events/{eventId}/sales`: the organizer's sales view (see [`crate::sales`]).

use axum::Json;
use axum::extract::{Path, State};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;

use serde::Serialize;
use utoipa::ToSchema;

use super::event_id;
use super::queue::QueueView;
use crate::domain::access::runs_event;
use crate::error::OrdersError;
use crate::sales::{self, SalesReport};
use crate::state::AppState;

/// The sales view: the sales, and the admission queue's figures when the event has one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SalesView {
    #[serde(flatten)]
    report: SalesReport,
    /// The admission queue (absent without one): its settings, length, places in, admissions
    /// given (`admitted`) and not yet expired (`shopping`), and the rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<QueueView>,
}

/// The event's seats sold, held and available, its waitlist, revenue and refunds by currency,
/// cancellations and sales per hour, and the admission queue's figures. For the event's
/// organizer and admins.
#[utoipa::path(get, path = "/events/{event_id}/sales", tag = "orders",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 200, description = "The figures at the event's current availability version", body = SalesView),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer nor an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn sales(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<Json<SalesView>, OrdersError> {
    let event_id = event_id(&event)?;
    let layout = state.layouts.existing(&event_id).await?;
    if !runs_event(&caller, Some(&layout)) {
        return Err(OrdersError::NotOrganizer);
    }
    let report = sales::report(&state.sales, &layout).await?;
    let queue = crate::admission::figures(&state.admission, &event_id)
        .await?
        .map(|overview| QueueView::of(&event_id, &overview));
    Ok(Json(SalesView {
        report: SalesReport::clone(&report),
        queue,
    }))
}
