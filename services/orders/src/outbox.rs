//! The outbox relay: publishes the messages purchases wrote into the store, with publisher
//! confirms, and marks each one sent only after the bus accepted it. A crash between the two
//! publishes a message twice, never zero times (at least once); consumers de-duplicate by
//! message id. Because the outbox is in the store, pending messages survive restarts.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::bus::{BusMessage, MessageBus};
use tokio::sync::Notify;

use crate::store::OrderRepository;

const BATCH: u32 = 100;
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Starts the relay; `wake` makes it look at the outbox right away (after a purchase).
pub fn spawn(orders: Arc<dyn OrderRepository>, bus: Arc<dyn MessageBus>, wake: Arc<Notify>) {
    tokio::spawn(async move {
        loop {
            let published_all = relay_once(&*orders, &*bus).await;
            if published_all {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                }
            } else {
                // The bus or the store is failing: back off instead of spinning.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
}

/// Publishes one batch; answers false when something failed.
pub async fn relay_once(orders: &dyn OrderRepository, bus: &dyn MessageBus) -> bool {
    let pending = match orders.pending_outbox(BATCH).await {
        Ok(pending) => pending,
        Err(error) => {
            tracing::warn!(%error, "cannot read the outbox");
            return false;
        }
    };
    for entry in pending {
        let message: BusMessage = match serde_json::from_str(&entry.payload) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(%error, id = %entry.id, "outbox message is not a bus message; skipping it");
                let _ = orders.mark_sent(&entry.id).await;
                continue;
            }
        };
        if let Err(error) = bus.publish(&message).await {
            tracing::warn!(%error, id = %entry.id, "outbox message not published yet");
            return false;
        }
        if let Err(error) = orders.mark_sent(&entry.id).await {
            tracing::warn!(%error, id = %entry.id, "published but not marked sent; it will be sent again");
            return false;
        }
    }
    true
}
