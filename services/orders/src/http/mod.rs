//! The orders service's routes (public paths are `/api/orders/*`, `/api/public/*` and
//! `/api/checkin/*`).

mod blocks;
mod cancel;
mod checkin;
mod holds;
pub mod internal;
mod orders;
mod payments;
mod purchase;
pub mod queue;
mod sales;
mod seats;
mod tickets;
mod waitlist;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, post};
use holdfast_common::openapi::{Caller, document_callers};
use holdfast_common::service_auth::ServiceKeys;
use utoipa::openapi::path::HttpMethod;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::ids::EventId;
use crate::error::OrdersError;
use crate::state::AppState;

/// Who the routes that are not open to anyone answer (see [`Caller`]).
const CALLERS: &[(HttpMethod, &str, Caller)] = &[
    (HttpMethod::Post, "/holds", Caller::SignedIn),
    (HttpMethod::Post, "/holds/best", Caller::SignedIn),
    (HttpMethod::Put, "/holds/{hold_id}/seats", Caller::SignedIn),
    (HttpMethod::Get, "/holds", Caller::SignedIn),
    (HttpMethod::Delete, "/holds/{hold_id}", Caller::SignedIn),
    (HttpMethod::Get, "/holds/{hold_id}/ttl", Caller::SignedIn),
    (
        HttpMethod::Get,
        "/holds/{hold_id}/details",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Post,
        "/holds/{hold_id}/refresh",
        Caller::SignedIn,
    ),
    (HttpMethod::Post, "/payments/intent", Caller::SignedIn),
    (HttpMethod::Post, "/payments/confirm", Caller::SignedIn),
    (HttpMethod::Post, "/purchase", Caller::SignedIn),
    (HttpMethod::Get, "/orders", Caller::SignedIn),
    (
        HttpMethod::Post,
        "/orders/{order_id}/cancel",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Post,
        "/events/{event_id}/waitlist",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Get,
        "/events/{event_id}/waitlist",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Delete,
        "/events/{event_id}/waitlist",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Get,
        "/events/{event_id}/sales",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Get,
        "/events/{event_id}/blocks",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Post,
        "/events/{event_id}/blocks",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Post,
        "/events/{event_id}/blocks/release",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Get,
        "/orders/{order_id}/tickets",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Get,
        "/orders/{order_id}/tickets/print",
        Caller::SignedIn,
    ),
    (HttpMethod::Get, "/tickets/{ticket_id}", Caller::SignedIn),
    (HttpMethod::Get, "/tickets/{ticket_id}/qr", Caller::SignedIn),
    (HttpMethod::Get, "/tickets", Caller::SignedIn),
    (
        HttpMethod::Post,
        "/tickets/{ticket_id}/transfer",
        Caller::SignedIn,
    ),
    (HttpMethod::Post, "/tickets/claim", Caller::SignedIn),
    (
        HttpMethod::Post,
        "/checkin/events/{event_id}/scan",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Post,
        "/checkin/events/{event_id}/scans",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Get,
        "/checkin/events/{event_id}/tickets",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Get,
        "/checkin/events/{event_id}/stats",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Post,
        "/checkin/events/{event_id}/devices",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Get,
        "/checkin/events/{event_id}/devices",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Delete,
        "/checkin/events/{event_id}/devices/{device_id}",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Get,
        "/events/{event_id}/ticket-policy",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Put,
        "/events/{event_id}/ticket-policy",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Put,
        "/events/{event_id}/queue",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Patch,
        "/events/{event_id}/queue",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Delete,
        "/events/{event_id}/queue",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Post,
        "/events/{event_id}/queue/me",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Get,
        "/events/{event_id}/queue/me",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Delete,
        "/events/{event_id}/queue/me",
        Caller::SignedIn,
    ),
    (
        HttpMethod::Post,
        "/events/{event_id}/queue/admission",
        Caller::SignedIn,
    ),
];

/// The public routes, each registered with its OpenAPI description, so that a route cannot
/// exist without being documented.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(seats::seat_map))
        .routes(routes!(seats::stream))
        .routes(routes!(holds::create, holds::mine))
        .routes(routes!(holds::best))
        .routes(routes!(holds::change_seats))
        .routes(routes!(holds::release))
        .routes(routes!(holds::ttl))
        .routes(routes!(holds::details))
        .routes(routes!(holds::refresh))
        .routes(routes!(payments::create_intent))
        .routes(routes!(payments::confirm))
        .routes(routes!(purchase::purchase))
        .routes(routes!(orders::mine))
        .routes(routes!(orders::public_order))
        .routes(routes!(cancel::cancel))
        .routes(routes!(waitlist::join, waitlist::place, waitlist::leave))
        .routes(routes!(sales::sales))
        .routes(routes!(blocks::list, blocks::block))
        .routes(routes!(blocks::release))
        .routes(routes!(tickets::of_order))
        .routes(routes!(tickets::print))
        .routes(routes!(tickets::one))
        .routes(routes!(tickets::qr))
        .routes(routes!(tickets::mine))
        .routes(routes!(tickets::transfer))
        .routes(routes!(tickets::claim))
        .routes(routes!(tickets::keys))
        .routes(routes!(checkin::scan))
        .routes(with_body_limit(
            routes!(checkin::batch),
            crate::checkin::MAX_BATCH_BODY_BYTES,
        ))
        .routes(routes!(checkin::tickets))
        .routes(routes!(checkin::stats))
        .routes(routes!(checkin::add_device, checkin::devices))
        .routes(routes!(checkin::revoke_device))
        .routes(routes!(checkin::get_policy, checkin::set_policy))
        .routes(routes!(
            queue::configure,
            queue::change_pace,
            queue::remove,
            queue::view
        ))
        .routes(routes!(queue::stream))
        .routes(routes!(queue::join, queue::place, queue::leave))
        .routes(routes!(queue::admit))
}

/// `routes` accepting bodies of up to `bytes` (axum's default is 2 MB).
fn with_body_limit(
    (schemas, paths, method_router): utoipa_axum::router::UtoipaMethodRouter<AppState>,
    bytes: usize,
) -> utoipa_axum::router::UtoipaMethodRouter<AppState> {
    (
        schemas,
        paths,
        method_router.layer(axum::extract::DefaultBodyLimit::max(bytes)),
    )
}

/// The OpenAPI description of the public routes: `/public/*` and `/checkin/*` are served by
/// the gateway under `/api`, the rest under `/api/orders`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented().into_openapi();
    document_callers(&mut doc, CALLERS);
    doc
}

/// The routes; `/internal/*` only for calls with a service token verified by `service_keys`.
pub fn router(service_keys: Arc<ServiceKeys>) -> Router<AppState> {
    // Service-to-service only: the gateway never forwards `/internal`, and reaching the port is
    // not enough.
    let internal = Router::new()
        .route(
            "/internal/events/{event_id}/layout-lock",
            post(internal::lock_layout),
        )
        .route(
            "/internal/events/{event_id}/layout-lock/{token}",
            delete(internal::unlock_layout),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            service_keys,
            holdfast_common::service_auth::require,
        ));
    Router::from(documented()).merge(internal)
}

/// An optional JSON body: `T::default()` when it is empty (or only white space), else `T`,
/// validated.
pub(crate) fn optional_json<T>(body: &[u8]) -> Result<T, OrdersError>
where
    T: serde::de::DeserializeOwned + Default + validator::Validate,
{
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: T = serde_json::from_slice(body).map_err(|e| {
        holdfast_common::error::ApiError::bad_request(
            "INVALID_JSON",
            format!("malformed JSON: {e}"),
        )
    })?;
    value.validate()?;
    Ok(value)
}

/// The event id of a request (see [`EventId`]); 400 `INVALID_ID` when it is none.
pub(crate) fn event_id(id: &str) -> Result<EventId, OrdersError> {
    EventId::parse(id).ok_or(OrdersError::InvalidEventId)
}
