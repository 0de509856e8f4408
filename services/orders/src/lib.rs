//! Orders service: seat maps, seat holds in the TTL store, simulated payment intents and
//! idempotent purchases.
//!
//! The crate exposes [`build`] (open the store, wire the state, add the common layers) and
//! [`router`] (the service's own routes); `main.rs` only launches it.

use std::sync::Arc;

use axum::Router;
use holdfast_common::config::Settings;
use holdfast_common::docstore::{DocumentStore, Schema};
use holdfast_common::infra::Infra;
use holdfast_common::metrics::Metrics;
use holdfast_common::server;

/// The service's name in logs, metrics, health answers and storage names.
pub const SERVICE: &str = "orders";

/// The storage this service needs; grows with its repository.
pub const SCHEMA: Schema = Schema {
    sqlite_migrations: &[],
    mongo_indexes: &[],
};

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub infra: Infra,
    pub store: DocumentStore,
}

/// The service's own routes.
pub fn router(state: AppState) -> Router {
    Router::new().with_state(state)
}

/// Opens the service's store and returns its complete application.
pub async fn build(settings: Arc<Settings>, infra: Infra) -> anyhow::Result<Router> {
    let store = DocumentStore::open(&settings, SERVICE, &SCHEMA).await?;
    tracing::info!(service = SERVICE, store = store.kind(), "store opened");
    let readiness = infra.readiness(Some(&store));
    let state = AppState {
        settings,
        infra,
        store,
    };
    Ok(server::finish(
        router(state),
        SERVICE,
        Metrics::new(SERVICE),
        readiness,
    ))
}
