//! Reading orders: the caller's list and a public ticket.

use axum::Json;
use axum::extract::{Path, State};
use holdfast_common::auth::AuthUser;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::OrdersError;
use holdfast_common::when::format_millis;

/// `GET /orders`: the caller's orders, newest first.
pub async fn mine(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<Value>, OrdersError> {
    let orders = state.orders.orders_of(caller.id()).await?;
    let orders: Vec<Value> = orders
        .iter()
        .map(|o| {
            json!({
                "_id": o.order_id,
                "orderId": o.order_id,
                "eventId": o.event_id,
                "seatIds": o.seat_ids,
                "paymentIntentId": o.paid_with(),
                "status": o.status,
                "createdAt": format_millis(o.created_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({ "orders": orders })))
}

/// `GET /public/orders/{orderId}` (public): a ticket anyone with the id may show.
pub async fn public_order(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Json<Value>, OrdersError> {
    let not_found = || holdfast_common::error::ApiError::not_found("no such order");
    if uuid::Uuid::parse_str(&order_id).is_err() {
        return Err(not_found().into());
    }
    let order = state.orders.order(&order_id).await?.ok_or_else(not_found)?;
    Ok(Json(json!({
        "order": {
            "orderId": order.order_id,
            "eventId": order.event_id,
            "seatIds": order.seat_ids,
            "status": order.status,
            "createdAt": format_millis(order.created_at_ms),
        }
    })))
}
