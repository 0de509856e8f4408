//! Reading orders: the caller's list and a public ticket. Every view of an order lists the
//! seats it still holds in `seatIds` and, apart, the cancelled ones with when each was given
//! back ([`OrderSeats`]), so that no two valid-looking tickets ever name one seat.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ids::{OrderId, SeatId};
use crate::domain::order::{Order, OrderStatus};
use crate::error::OrdersError;
use crate::state::AppState;
use holdfast_common::when::format_millis;

/// An order's seats, as every view of it shows them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderSeats<'a> {
    /// The seats the order still holds; cancelled seats are not among them.
    #[schema(example = json!(["R1-S1", "R1-S3"]))]
    seat_ids: Vec<&'a str>,
    /// The seats given back by cancellations (no longer the order's).
    #[schema(example = json!(["R1-S2"]))]
    cancelled_seat_ids: Vec<&'a str>,
    /// Each cancelled seat with when it was given back.
    cancellations: Vec<SeatCancellation<'a>>,
}

/// A seat given back by a cancellation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatCancellation<'a> {
    seat_id: &'a str,
    /// `null` for cancellations recorded before the time was kept.
    #[schema(format = DateTime)]
    cancelled_at: Option<String>,
}

impl<'a> From<&'a Order> for OrderSeats<'a> {
    fn from(order: &'a Order) -> Self {
        Self {
            seat_ids: order.standing_seats().map(SeatId::as_str).collect(),
            cancelled_seat_ids: SeatId::strs(&order.cancelled_seat_ids),
            cancellations: order
                .cancelled_seats()
                .map(|(seat, at_ms)| SeatCancellation {
                    seat_id: seat,
                    cancelled_at: at_ms.map(format_millis),
                })
                .collect(),
        }
    }
}

/// One of the caller's orders.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView<'a> {
    /// The same as `orderId`, for clients that read `_id`.
    #[serde(rename = "_id")]
    id: &'a str,
    /// A UUID.
    #[schema(example = "0b6c1a52-8a0e-4c55-9d1f-1f1b2c3d4e5f")]
    order_id: &'a str,
    event_id: &'a str,
    #[serde(flatten)]
    seats: OrderSeats<'a>,
    /// The paying intent; `null` for free seats.
    payment_intent_id: Option<&'a str>,
    status: OrderStatus,
    #[schema(format = DateTime)]
    created_at: String,
}

impl<'a> From<&'a Order> for OrderView<'a> {
    fn from(order: &'a Order) -> Self {
        Self {
            id: &order.order_id,
            order_id: &order.order_id,
            event_id: &order.event_id,
            seats: OrderSeats::from(order),
            payment_intent_id: order.paid_with(),
            status: order.status,
            created_at: format_millis(order.created_at_ms),
        }
    }
}

/// The caller's orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList<'a> {
    orders: Vec<OrderView<'a>>,
}

/// An order as anyone with its id may see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketView<'a> {
    order_id: &'a str,
    event_id: &'a str,
    #[serde(flatten)]
    seats: OrderSeats<'a>,
    status: OrderStatus,
    /// Whether the ticket admits anyone: `false` once every seat is cancelled.
    valid_for_entry: bool,
    #[schema(format = DateTime)]
    created_at: String,
}

/// `{order: …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ticket<'a> {
    order: TicketView<'a>,
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders",
    responses((status = 200, description = "Newest first", body = OrderList)))]
pub async fn mine(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Response, OrdersError> {
    let orders = state.stores.orders.orders_of(caller.id()).await?;
    let orders = orders.iter().map(OrderView::from).collect();
    Ok(Json(OrderList { orders }).into_response())
}

/// A ticket anyone with the order's id may show (no authentication).
#[utoipa::path(get, path = "/public/orders/{order_id}", tag = "orders",
    params(("order_id" = String, Path, description = "The order's id (a UUID)")),
    responses(
        (status = 200, description = "The order", body = Ticket),
        (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
    ))]
pub async fn public_order(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Response, OrdersError> {
    let not_found = || holdfast_common::error::ApiError::not_found("no such order");
    if uuid::Uuid::parse_str(&order_id).is_err() {
        return Err(not_found().into());
    }
    let order = state
        .stores
        .orders
        .order(&OrderId::named(&order_id))
        .await?
        .ok_or_else(not_found)?;
    let order = TicketView {
        order_id: &order.order_id,
        event_id: &order.event_id,
        seats: OrderSeats::from(&order),
        status: order.status,
        valid_for_entry: order.standing_seats().next().is_some(),
        created_at: format_millis(order.created_at_ms),
    };
    Ok(Json(Ticket { order }).into_response())
}
