//! The orders service's routes (public paths are `/api/orders/*` and `/api/public/*`).

mod holds;
pub mod internal;
mod orders;
mod payments;
mod purchase;
mod seats;

use axum::Router;
use axum::routing::{delete, get, post};
use holdfast_common::auth::AuthUser;

use crate::AppState;
use crate::domain::hold::Hold;
use crate::error::OrdersError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/seats/{event_id}", get(seats::seat_map))
        .route("/seats/{event_id}/stream", get(seats::stream))
        .route("/holds", post(holds::create))
        .route("/holds/{hold_id}", delete(holds::release))
        .route("/holds/{hold_id}/ttl", get(holds::ttl))
        .route("/holds/{hold_id}/details", get(holds::details))
        .route("/holds/{hold_id}/refresh", post(holds::refresh))
        .route("/payments/intent", post(payments::create_intent))
        .route("/payments/confirm", post(payments::confirm))
        .route("/purchase", post(purchase::purchase))
        .route("/orders", get(orders::mine))
        .route("/public/orders/{order_id}", get(orders::public_order))
        .route(
            "/internal/events/{event_id}/layout-lock",
            post(internal::lock_layout),
        )
        .route(
            "/internal/events/{event_id}/layout-lock/{token}",
            delete(internal::unlock_layout),
        )
}

/// The event id of a request in its canonical spelling (see [`holdfast_common::ids`]), so
/// that hold keys, sold-seat lookups and the layout cache all see one spelling.
pub(crate) fn event_id(id: &str) -> Result<String, OrdersError> {
    holdfast_common::ids::object_id(id).ok_or(OrdersError::InvalidEventId)
}

/// Whether `caller` may see and act on `hold`: its holder, or an admin.
fn may_use(caller: &AuthUser, hold: &Hold) -> bool {
    caller.is_admin() || hold.user_id == caller.id()
}
