//! The events service's routes (public paths are `/api/events*` at the gateway).

mod events;

use axum::Router;
use holdfast_common::openapi::{Caller, document_callers};
use utoipa::openapi::path::HttpMethod;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Who the routes that are not open to anyone answer (see [`Caller`]).
const CALLERS: &[(HttpMethod, &str, Caller)] = &[
    (HttpMethod::Post, "/events", Caller::SignedIn),
    (HttpMethod::Put, "/events/{id}", Caller::SignedIn),
    (HttpMethod::Delete, "/events/{id}", Caller::SignedIn),
];

/// The public routes, each registered with its OpenAPI description, so that a route cannot
/// exist without being documented.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events::list, events::create))
        .routes(routes!(events::get, events::update, events::delete))
}

pub fn router() -> Router<AppState> {
    documented().into()
}

/// The OpenAPI description of [`router`] (the gateway serves these paths under `/api`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented().into_openapi();
    document_callers(&mut doc, CALLERS);
    doc
}
