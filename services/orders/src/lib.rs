//! Orders service: seat maps, atomic seat holds in the TTL store, simulated payment intents,
//! and idempotent purchases written in one transaction with an outbox.
//!
//! The crate exposes [`build`] (open the store, start the outbox relay and the layout-cache
//! follower, add the common layers) and [`router`]; `main.rs` only launches it.

pub mod admission;
pub mod admission_pass;
pub mod announcer;
pub mod blocks;
pub mod cancellation;
pub mod checkin;
pub mod checkout;
pub mod committed_sales;
pub mod domain;
pub mod error;
pub mod holding;
pub mod http;
pub mod idempotency;
pub mod layouts;
pub mod live;
pub mod outbox;
pub mod sales;
pub mod seat_changes;
pub mod state;
pub mod store;
pub mod ticket_keys;
pub mod transfers;
pub mod venue_views;
pub mod waitlist;

use std::sync::Arc;

use axum::Router;
use holdfast_common::auth::TokenKeys;
use holdfast_common::config::Settings;
use holdfast_common::docstore::Database;
use holdfast_common::infra::Infra;
use holdfast_common::metrics::Metrics;
use holdfast_common::server;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

use crate::layouts::Layouts;
use crate::seat_changes::SeatChanges;
use crate::state::{AppState, Handlers};
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
    // Orders stored before tickets existed get theirs, in the background (one pass).
    let tickets = stores.tickets.clone();
    tokio::spawn(async move {
        match tickets.backfill_tickets().await {
            Ok(0) => {}
            Ok(issued) => tracing::info!(issued, "tickets issued for orders bought before tickets"),
            Err(error) => tracing::error!(%error, "cannot issue tickets for earlier orders"),
        }
    });
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
    let holds = Holds::new(
        infra.kv.clone(),
        board,
        stores.orders.clone(),
        settings.orders.clone(),
    );
    let (round_queue, rounds_wanted) = tokio::sync::mpsc::unbounded_channel();
    let changes = SeatChanges::new(
        live.clone(),
        announcer::Announcer::spawn(infra.bus.clone()),
        settings.orders.hold_max_lifetime,
        stores.waitlist.clone(),
        round_queue,
    );
    let payments = Payments::new(
        infra.kv.clone(),
        settings.orders.payment_intent_ttl,
        settings.orders.max_payment_intents_per_user,
    );
    let token_keys = Arc::new(TokenKeys::new(&settings.auth.jwt_secret));
    let admission = admission::Ports::new(
        store::admission::queue(&infra),
        layouts.clone(),
        &settings.auth.jwt_secret,
    );
    let ticket_keys = Arc::new(ticket_keys::TicketKeys::load(&settings)?);
    let state = AppState::new(Handlers {
        holding: holding::Ports {
            holds: holds.clone(),
            layouts: layouts.clone(),
            taken: counters.holds_taken.clone(),
            conflicts: counters.hold_conflicts.clone(),
            changes: changes.clone(),
            live: live.clone(),
            gate: admission.gate.clone(),
        },
        checkout: checkout::Ports {
            holds: holds.clone(),
            layouts: layouts.clone(),
            payments: payments.clone(),
            orders: stores.orders.clone(),
            idempotency_ttl: settings.orders.idempotency_ttl,
            purchases: counters.purchases.clone(),
            outbox_wake: outbox_wake.clone(),
            changes: changes.clone(),
            ticket_keys: ticket_keys.clone(),
            gate: admission.gate.clone(),
        },
        idempotency: idempotency::Ports {
            kv: infra.kv.clone(),
            records: stores.idempotency.clone(),
        },
        cancellation: cancellation::Ports {
            holds: holds.clone(),
            layouts: layouts.clone(),
            orders: stores.orders.clone(),
            tickets: stores.tickets.clone(),
            cutoff: settings.orders.cancellation_cutoff,
            outbox_wake: outbox_wake.clone(),
            changes: changes.clone(),
        },
        waitlist: waitlist::Ports {
            entries: stores.waitlist.clone(),
            holds: holds.clone(),
            layouts: layouts.clone(),
            rounds: Arc::new(waitlist::Rounds::default()),
            max_seats_per_hold: settings.orders.max_seats_per_hold,
            offer_ttl: settings.orders.waitlist_offer_ttl,
            outbox_wake: outbox_wake.clone(),
            changes: changes.clone(),
        },
        blocks: blocks::Ports {
            holds: holds.clone(),
            layouts: layouts.clone(),
            orders: stores.orders.clone(),
            changes: changes.clone(),
        },
        sales: sales::Ports {
            holds: holds.clone(),
            orders: stores.orders.clone(),
            waitlist: stores.waitlist.clone(),
            cache: Arc::new(sales::SalesCache::default()),
        },
        checkin: checkin::Ports::new(
            stores.tickets.clone(),
            stores.checkin.clone(),
            layouts.clone(),
            ticket_keys.clone(),
            token_keys.clone(),
            settings.orders.scans_per_second,
            settings.orders.scan_batches_per_minute,
        ),
        transfers: transfers::Ports {
            tickets: stores.tickets.clone(),
            layouts: layouts.clone(),
            outbox_wake: outbox_wake.clone(),
        },
        admission,
        keys: token_keys,
        ticket_keys,
        service_keys: Arc::new(holdfast_common::service_auth::ServiceKeys::new(
            &settings.auth.service_token_secret,
        )),
        live,
        changes,
        holds,
        payments,
        stores,
        layouts,
        settings: settings.orders.clone(),
    });
    live::spawn(&state.live, state.holds.board());
    state
        .changes
        .follow_expiries(state.holds.board(), counters.holds_expired.clone());
    waitlist::spawn(&state.waitlist, &state.live, &*infra.bus, rounds_wanted).await?;
    committed_sales::spawn(&*infra.bus, state.holds.clone(), state.changes.clone()).await?;
    let app = router(state).layer(tower_http::compression::CompressionLayer::new());
    Ok(server::finish(app, SERVICE, metrics, readiness))
}
