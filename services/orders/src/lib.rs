//! Orders service: seat maps, atomic seat holds in the TTL store, simulated payment intents,
//! and idempotent purchases written in one transaction with an outbox.
//!
//! The crate exposes [`build`] (open the store, start the outbox relay and the layout-cache
//! follower, add the common layers) and [`router`]; `main.rs` only launches it.

pub mod announcer;
pub mod cancellation;
pub mod checkout;
pub mod domain;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod layouts;
pub mod live;
pub mod outbox;
pub mod sales;
pub mod seat_changes;
pub mod store;
pub mod waitlist;

use std::sync::Arc;

use axum::Router;
use holdfast_common::auth::TokenKeys;
use holdfast_common::config::{OrdersSettings, Settings};
use holdfast_common::docstore::Database;
use holdfast_common::infra::Infra;
use holdfast_common::metrics::Metrics;
use holdfast_common::server;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

use crate::layouts::Layouts;
use crate::store::Stores;
use crate::store::holds::Holds;
use crate::store::payments::Payments;

/// The service's name in logs, metrics, health answers and storage names.
pub const SERVICE: &str = "orders";

/// Counters the service reports on `/metrics`.
#[derive(Clone, Default)]
pub struct OrdersMetrics {
    pub holds_taken: Counter,
    pub holds_expired: Counter,
    pub hold_conflicts: Counter,
    pub purchases: Counter,
}

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    /// The orders section of the settings; the rest is read once, in [`build`].
    pub settings: OrdersSettings,
    pub infra: Infra,
    pub stores: Stores,
    pub holds: Holds,
    pub payments: Payments,
    pub layouts: Arc<Layouts>,
    pub keys: Arc<TokenKeys>,
    /// Verify the service tokens of `/internal/*` calls.
    pub service_keys: Arc<holdfast_common::service_auth::ServiceKeys>,
    pub metrics: OrdersMetrics,
    /// Wakes the outbox relay after a purchase.
    pub outbox_wake: Arc<Notify>,
    /// Built seat maps and recent changes.
    pub live: Arc<live::Live>,
    /// What follows every seat change: the live map, the bus, the waitlist.
    pub changes: seat_changes::SeatChanges,
    /// The waitlist rounds running in this process.
    pub waitlist: Arc<waitlist::Rounds>,
    /// Sales reports by event, for the availability version they were tallied at.
    pub sales: Arc<sales::SalesCache>,
}

holdfast_common::token_keys_in!(AppState, keys);

impl AppState {
    /// The layout of an existing event (its id already canonical), else 404.
    pub(crate) async fn layout(
        &self,
        event_id: &str,
    ) -> Result<domain::seat::Layout, error::OrdersError> {
        self.layouts
            .get(event_id)
            .await?
            .ok_or(error::OrdersError::EventNotFound)
    }
}

/// The service's own routes.
pub fn router(state: AppState) -> Router {
    http::router(state.service_keys.clone()).with_state(state)
}

/// Opens the order store, starts the background tasks and returns the complete application.
pub async fn build(settings: Arc<Settings>, infra: Infra) -> anyhow::Result<Router> {
    let store = Database::open(&settings, SERVICE, &store::SCHEMA).await?;
    tracing::info!(service = SERVICE, store = store.kind(), "store opened");
    let readiness = infra.readiness(Some(&store));
    let counters = OrdersMetrics::default();
    let metrics = Metrics::with(SERVICE, |registry| {
        registry.register("holds_taken", "Holds taken", counters.holds_taken.clone());
        registry.register(
            "holds_expired",
            "Holds that ran out before being bought or released",
            counters.holds_expired.clone(),
        );
        registry.register(
            "hold_conflicts",
            "Hold requests refused because a seat was taken",
            counters.hold_conflicts.clone(),
        );
        registry.register(
            "purchases",
            "Purchases committed",
            counters.purchases.clone(),
        );
    });
    let stores = Stores::open(&store);
    let board = store::board::board(&infra);
    let layouts = Arc::new(Layouts::new(
        board.clone(),
        &settings.service_urls.events,
        settings.orders.layout_cache_ttl,
        settings.upstream_timeout,
    )?);
    layouts.clone().follow_changes(infra.bus.clone()).await?;
    let outbox_wake = Arc::new(Notify::new());
    outbox::spawn(
        stores.outbox.clone(),
        infra.bus.clone(),
        outbox_wake.clone(),
    );
    let retention_ms = i64::try_from(settings.record_retention.as_millis()).unwrap_or(i64::MAX);
    let (outbox, idempotency) = (
        Arc::downgrade(&stores.outbox),
        Arc::downgrade(&stores.idempotency),
    );
    holdfast_common::retention::spawn("orders", move |now_ms, limit| {
        let (outbox, idempotency) = (outbox.upgrade()?, idempotency.upgrade()?);
        Some(Box::pin(async move {
            let published = outbox
                .prune_published(now_ms.saturating_sub(retention_ms), limit)
                .await?;
            let expired = idempotency
                .prune_expired(now_ms, limit.saturating_sub(published))
                .await?;
            Ok(published + expired)
        }))
    });
    let live = Arc::new(live::Live::default());
    let (round_queue, rounds_wanted) = tokio::sync::mpsc::unbounded_channel();
    let state = AppState {
        holds: Holds::new(
            infra.kv.clone(),
            board,
            stores.orders.clone(),
            settings.orders.clone(),
        ),
        changes: seat_changes::SeatChanges::new(
            live.clone(),
            announcer::Announcer::spawn(infra.bus.clone()),
            settings.orders.hold_max_lifetime,
            stores.waitlist.clone(),
            round_queue,
        ),
        live,
        waitlist: Arc::new(waitlist::Rounds::default()),
        sales: Arc::new(sales::SalesCache::default()),
        payments: Payments::new(
            infra.kv.clone(),
            settings.orders.payment_intent_ttl,
            settings.orders.max_payment_intents_per_user,
        ),
        keys: Arc::new(TokenKeys::new(&settings.auth.jwt_secret)),
        service_keys: Arc::new(holdfast_common::service_auth::ServiceKeys::new(
            &settings.auth.service_token_secret,
        )),
        metrics: counters,
        stores,
        layouts,
        outbox_wake,
        settings: settings.orders.clone(),
        infra,
    };
    live::spawn(&state);
    waitlist::spawn(&state, rounds_wanted).await?;
    let app = router(state).layer(tower_http::compression::CompressionLayer::new());
    Ok(server::finish(app, SERVICE, metrics, readiness))
}
