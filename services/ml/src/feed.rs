//! Keeps the model fed: the event catalog from the events service at start-up (retried in the
//! background until it answers), then every `event.*` and `order.purchased` message on the bus.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::bus::MessageBus;
use holdfast_common::messages::{EventDetails, Message, OrderPurchased};
use holdfast_common::replicas::BaseUrls;

use crate::model::Model;

/// The most events the events service lists per page.
const PAGE: u32 = 100;

/// Loads every event the events service lists.
async fn load_catalog(
    client: &reqwest::Client,
    events_service: &BaseUrls,
    model: &Model,
) -> anyhow::Result<usize> {
    let mut loaded = 0;
    for page in 1.. {
        let events: Vec<EventDetails> = events_service
            .send(|base| client.get(format!("{base}/events?limit={PAGE}&page={page}")))
            .await?
            .error_for_status()?
            .json()
            .await?;
        for event in &events {
            model.upsert_event(event);
        }
        loaded += events.len();
        if events.len() < PAGE as usize {
            break;
        }
    }
    Ok(loaded)
}

/// How long the events service may take to answer at start-up before it is worth a warning.
const CATALOG_PATIENCE: Duration = Duration::from_secs(15);

/// Subscribes to the bus, then loads the catalog in the background. Subscribing first means no
/// change made while the catalog loads is missed.
pub async fn start(
    model: Arc<Model>,
    bus: Arc<dyn MessageBus>,
    events_url: String,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut subscription = bus
        .subscribe("ml.model", &["event.*", OrderPurchased::TYPE])
        .await?;
    let follower = model.clone();
    tokio::spawn(async move {
        while let Some(delivery) = subscription.next().await {
            let message = &delivery.message;
            match follower.apply(message) {
                Ok(_) => {
                    if let Err(error) = delivery.ack().await {
                        tracing::warn!(%error, "cannot acknowledge a model update");
                    }
                }
                Err(error) => delivery.unreadable(error).await,
            }
        }
    });
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    let events = BaseUrls::new(&events_url);
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut backoff = Duration::from_millis(200);
        loop {
            match load_catalog(&client, &events, &model).await {
                Ok(count) => {
                    tracing::info!(count, "event catalog loaded");
                    return;
                }
                // Services start together: the events service not answering in the first
                // seconds is expected, not worth a warning.
                Err(error) if started.elapsed() < CATALOG_PATIENCE => {
                    tracing::debug!(%error, ?backoff, "event catalog not loaded yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(error) => {
                    tracing::warn!(%error, ?backoff, "event catalog not loaded yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    });
    Ok(())
}
