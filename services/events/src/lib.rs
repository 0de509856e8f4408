//! Events service: events with their seat layout and price, owned by organizers.
//!
//! Anyone may list and read events; organizers create them and change their own; admins change
//! any. Every change is announced on the bus (`event.created|updated|deleted`).
//!
//! The crate exposes [`build`] (open the store, seed demo events, add the common layers) and
//! [`router`]; `main.rs` only launches it.

pub mod catalogue;
pub mod domain;
pub mod error;
pub mod http;
pub mod layout_lock;
pub mod seed;
pub mod store;

use std::sync::Arc;

use axum::Router;
use holdfast_common::auth::TokenKeys;
use holdfast_common::config::Settings;
use holdfast_common::docstore::Database;
use holdfast_common::infra::Infra;
use holdfast_common::metrics::Metrics;
use holdfast_common::server;
use holdfast_common::service_auth::ServiceKeys;

use crate::layout_lock::OrdersClient;
use crate::store::EventRepository;

/// The service's name in logs, metrics, health answers and storage names.
pub const SERVICE: &str = "events";

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    /// Whether demo events are seeded (see [`Settings::seeds_demo_data`]).
    pub seeds_demo_data: bool,
    pub infra: Infra,
    pub events: Arc<dyn EventRepository>,
    pub keys: Arc<TokenKeys>,
    pub orders: OrdersClient,
    /// Rendered pages of the event list; every write through this process invalidates them.
    pub list_cache: Arc<catalogue::ListCache>,
}

holdfast_common::token_keys_in!(AppState, keys);

/// The service's own routes.
pub fn router(state: AppState) -> Router {
    http::router().with_state(state)
}

/// Opens the event store, seeds demo events and returns the complete application.
pub async fn build(settings: Arc<Settings>, infra: Infra) -> anyhow::Result<Router> {
    let store = Database::open(&settings, SERVICE, &store::SCHEMA).await?;
    tracing::info!(service = SERVICE, store = store.kind(), "store opened");
    let readiness = infra.readiness(Some(&store));
    let state = AppState {
        keys: Arc::new(TokenKeys::new(&settings.auth.jwt_secret)),
        events: store::events(&store).await?,
        orders: OrdersClient::new(
            &settings.service_urls.orders,
            settings.upstream_timeout,
            Arc::new(ServiceKeys::new(&settings.auth.service_token_secret)),
        )?,
        list_cache: Arc::default(),
        seeds_demo_data: settings.seeds_demo_data(),
        infra,
    };
    seed::seed_demo_events(&state).await?;
    Ok(server::finish(
        router(state),
        SERVICE,
        Metrics::new(SERVICE),
        readiness,
    ))
}
