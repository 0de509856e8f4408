//! `POST /orders/{orderId}/cancel`: parses the request, hands it to [`crate::cancellation`]
//! and answers the order with its refunds.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use holdfast_common::money;
use holdfast_common::when::format_millis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::cancellation::{self, Cancelled};
use crate::domain::ids::{OrderId, SeatId};
use crate::domain::order::{OrderStatus, Refund};
use crate::error::OrdersError;
use crate::http::orders::OrderSeats;
use crate::state::AppState;

/// Which seats to cancel; without a body (or without `seatIds`) every seat of the order.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelRequest {
    #[validate(length(min = 1, max = 100, message = "must list 1 to 100 seats"))]
    #[schema(min_items = 1, max_items = 100, example = json!(["R1-S2"]))]
    seat_ids: Option<Vec<String>>,
}

/// One refund: simulated, so always `refunded` at once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundView<'a> {
    refund_id: &'a str,
    /// The seats this cancellation gave back.
    seat_ids: Vec<&'a str>,
    /// In major units, with at most 2 decimals.
    #[schema(value_type = f64, example = 500.0)]
    amount: serde_json::Number,
    currency: &'a str,
    /// `null` for free seats.
    payment_intent_id: Option<&'a str>,
    #[schema(example = "refunded")]
    status: &'static str,
    #[schema(format = DateTime)]
    created_at: String,
}

impl<'a> From<&'a Refund> for RefundView<'a> {
    fn from(refund: &'a Refund) -> Self {
        Self {
            refund_id: &refund.refund_id,
            seat_ids: SeatId::strs(&refund.seat_ids),
            amount: money::to_json(refund.amount_minor),
            currency: &refund.currency,
            payment_intent_id: refund.payment_intent_id.as_deref(),
            status: "refunded",
            created_at: format_millis(refund.created_at_ms),
        }
    }
}

/// An order after a cancellation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelledOrder<'a> {
    #[serde(rename = "_id")]
    id: &'a str,
    order_id: &'a str,
    event_id: &'a str,
    #[serde(flatten)]
    seats: OrderSeats<'a>,
    /// `cancelled` once every seat is, `partially_cancelled` before.
    status: OrderStatus,
    /// What the order cost, in major units.
    #[schema(value_type = f64)]
    amount: serde_json::Number,
    /// What its cancellations refunded so far, in major units.
    #[schema(value_type = f64)]
    refunded_amount: serde_json::Number,
    currency: &'a str,
    refunds: Vec<RefundView<'a>>,
}

/// Cancels the order's seats (all unless `seatIds` names some) and refunds them pro rata. The
/// buyer may cancel until `CANCELLATION_CUTOFF_HOURS` before the event, the event's organizer
/// and admins any time. Cancelling what is already cancelled answers the order as it stands.
#[utoipa::path(post, path = "/orders/{order_id}/cancel", tag = "orders",
    params(("order_id" = String, Path, description = "The order's id (a UUID)")),
    request_body(content = Option<CancelRequest>, description = "Optional; without it every seat is cancelled"),
    responses(
        (status = 200, description = "The order as the cancellation left it, with every refund", body = CancelledOrder),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED`, `INVALID_SEATS` (a seat named twice or not the order's)", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such order of yours or of your event", body = ErrorBody),
        (status = 409, description = "`CANCELLATION_CLOSED`: the buyer's window has closed; `CANCELLATION_UNVERIFIABLE`: the event's start time cannot be read, so a buyer cannot cancel", body = ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(order_id): Path<String>,
    body: Bytes,
) -> Result<Response, OrdersError> {
    // The body is optional: an empty one cancels every seat.
    let CancelRequest { seat_ids } = super::optional_json(&body)?;
    if uuid::Uuid::parse_str(&order_id).is_err() {
        return Err(OrdersError::NoSuchOrder);
    }
    let seat_ids = seat_ids.as_deref().map(SeatId::all);
    let order_id = OrderId::named(&order_id);
    let cancelled =
        cancellation::cancel(&state.cancellation, &caller, &order_id, seat_ids.as_deref()).await?;
    Ok(Json(view(&cancelled)).into_response())
}

fn view(cancelled: &Cancelled) -> CancelledOrder<'_> {
    let order = &cancelled.order;
    CancelledOrder {
        id: &order.order_id,
        order_id: &order.order_id,
        event_id: &order.event_id,
        seats: OrderSeats::from(order),
        status: order.status,
        amount: money::to_json(order.amount_minor),
        refunded_amount: money::to_json(order.refunded_minor),
        currency: &order.currency,
        refunds: cancelled.refunds.iter().map(RefundView::from).collect(),
    }
}
