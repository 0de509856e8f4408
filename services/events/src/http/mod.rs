//! The events service's routes (public paths are `/api/events*` at the gateway).

mod events;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

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
    documented().into_openapi()
}
