//! Notifications service: e-mails buyers and waitlisted users about what happened to their
//! orders and offers, from the bus, with a delivery log that retries and gives up visibly.
//!
//! It is a service of its own rather than a module of orders because mail is the one part of
//! the after-sale that depends on a third party: an SMTP relay that is slow or down must never
//! hold a checkout's resources, its retries must survive an orders deployment, and it scales
//! (or stops) on its own. Everything it needs travels in the messages (each carries the
//! recipient's address), so it calls no other service.
//!
//! - [`compose`] turns `order.purchased`, `order.cancelled`, `waitlist.offered`,
//!   `waitlist.expired` and `waitlist.removed` into mails;
//! - [`store`] is the delivery log (one record per bus message id, so a redelivered message
//!   sends nothing twice);
//! - [`mailer`] sends through `SMTP_URL`, or appends to `DATA_DIR/mail.mbox` in development;
//! - [`worker`] records what the bus brings and sends what is due, with exponential backoff,
//!   jitter and a `DEAD` state;
//! - [`dead_letters`] keeps the bus's dead letters (every service's work queues) for operators;
//! - [`http`] lets admins list and re-drive dead letters and retry dead mails.
//!
//! The crate exposes [`build`]; `main.rs` only launches it. Besides the admin routes, its
//! router serves the common `/health`, `/ready` and `/metrics`.

pub mod compose;
pub mod dead_letters;
pub mod error;
pub mod http;
pub mod mailer;
pub mod store;
pub mod worker;

use std::sync::Arc;

use axum::Router;
use holdfast_common::config::Settings;
use holdfast_common::docstore::Database;
use holdfast_common::infra::Infra;
use holdfast_common::metrics::Metrics;
use holdfast_common::server;

use holdfast_common::auth::TokenKeys;
use tokio::sync::Notify;

use crate::dead_letters::{DeadLetterMetrics, DeadLetters};
use crate::http::AdminState;
use crate::mailer::Mailer;
use crate::worker::{Counters, RetryPolicy, Worker};

/// The service's name in logs, metrics, health answers and storage names.
pub const SERVICE: &str = "notifications";

/// Opens the delivery log, starts consuming and sending, and returns the operations router.
pub async fn build(settings: Arc<Settings>, infra: Infra) -> anyhow::Result<Router> {
    let store = Database::open(&settings, SERVICE, &store::SCHEMA).await?;
    let mailer = Mailer::from_settings(&settings)?;
    tracing::info!(
        service = SERVICE,
        store = store.kind(),
        mailer = %mailer.describe(),
        "delivery log opened"
    );
    let readiness = infra.readiness(Some(&store));
    let counters = Counters::default();
    let dead_letter_metrics = DeadLetterMetrics::default();
    let metrics = Metrics::with(SERVICE, |registry| {
        counters.register(registry);
        dead_letter_metrics.register(registry);
    });
    let log = store::deliveries(&store);
    let dead_letters = Arc::new(DeadLetters {
        log: store::dead_letters::dead_letters(&store),
        bus: infra.bus.clone(),
        metrics: dead_letter_metrics,
    });
    dead_letters.start().await?;
    let wake = Arc::new(Notify::new());
    let retention_ms = i64::try_from(settings.record_retention.as_millis()).unwrap_or(i64::MAX);
    let pruned = Arc::downgrade(&log);
    holdfast_common::retention::spawn("deliveries", move |now_ms, limit| {
        let log = pruned.upgrade()?;
        Some(Box::pin(async move {
            log.prune(now_ms.saturating_sub(retention_ms), limit).await
        }))
    });
    Worker {
        log: log.clone(),
        mailer: Arc::new(mailer),
        policy: RetryPolicy::from_settings(&settings.notifications),
        counters,
    }
    .start(infra.bus.as_ref(), wake.clone())
    .await?;
    let admin = http::router(AdminState {
        dead_letters,
        mails: log,
        wake,
        keys: Arc::new(TokenKeys::new(&settings.auth.jwt_secret)),
    });
    Ok(server::finish(admin, SERVICE, metrics, readiness))
}
