//! ML service: event recommendations from a model derived from the bus's events and orders
//! (rebuildable at any time, so it keeps no store of its own). See [`model`] for the scoring.
//!
//! The crate exposes [`build`] (start feeding the model, add the common layers) and [`router`];
//! `main.rs` only launches it.

pub mod error;
pub mod feed;
pub mod http;
pub mod model;

use std::sync::Arc;

use axum::Router;
use holdfast_common::auth::TokenKeys;
use holdfast_common::config::Settings;
use holdfast_common::infra::Infra;
use holdfast_common::metrics::Metrics;
use holdfast_common::server;

use crate::model::Model;

/// The service's name in logs, metrics and health answers.
pub const SERVICE: &str = "ml";

/// Everything a handler may need: the model (fed from the bus by [`feed`]) and the keys that
/// verify callers' tokens (a user's recommendations are theirs alone).
#[derive(Clone)]
pub struct AppState {
    pub model: Arc<Model>,
    pub keys: Arc<TokenKeys>,
}

holdfast_common::token_keys_in!(AppState, keys);

/// The service's own routes.
pub fn router(state: AppState) -> Router {
    http::router().with_state(state)
}

/// Starts feeding the model and returns the complete application.
pub async fn build(settings: Arc<Settings>, infra: Infra) -> anyhow::Result<Router> {
    let model = Arc::new(Model::default());
    feed::start(
        model.clone(),
        infra.bus.clone(),
        settings.service_urls.events.clone(),
        settings.upstream_timeout,
    )
    .await?;
    let readiness = infra.readiness(None);
    let state = AppState {
        model,
        keys: Arc::new(TokenKeys::new(&settings.auth.jwt_secret)),
    };
    Ok(server::finish(
        router(state),
        SERVICE,
        Metrics::new(SERVICE),
        readiness,
    ))
}
