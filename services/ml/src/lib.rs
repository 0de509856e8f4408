//! ML service: event recommendations, from a model derived from the bus's events and orders
//! (rebuildable at any time, so it keeps no store of its own).
//!
//! The crate exposes [`build`] and [`router`]; `main.rs` only launches it.

use std::sync::Arc;

use axum::Router;
use holdfast_common::config::Settings;
use holdfast_common::infra::Infra;
use holdfast_common::metrics::Metrics;
use holdfast_common::server;

/// The service's name in logs, metrics and health answers.
pub const SERVICE: &str = "ml";

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub infra: Infra,
}

/// The service's own routes.
pub fn router(state: AppState) -> Router {
    Router::new().with_state(state)
}

/// Returns the service's complete application.
pub async fn build(settings: Arc<Settings>, infra: Infra) -> anyhow::Result<Router> {
    let readiness = infra.readiness(None);
    let state = AppState { settings, infra };
    Ok(server::finish(
        router(state),
        SERVICE,
        Metrics::new(SERVICE),
        readiness,
    ))
}
