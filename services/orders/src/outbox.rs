//! The outbox relay: publishes the messages purchases wrote into the store, with publisher
//! confirms, and marks each one sent only after the bus accepted it. A crash between the two
//! publishes a message twice, never zero times (at least once); consumers de-duplicate by
//! message id. Because the outbox is in the store, pending messages survive restarts. Every
//! orders replica runs a relay; each claims the messages it publishes for a while
//! (`OutboxStore::claim_outbox`), so the relays share the outbox rather than each publishing
//! every message, and a relay that dies leaves its claims to run out.
//! Purchases write `order.purchased`, cancellations `order.cancelled`, the waitlist
//! `waitlist.offered` and `waitlist.expired`, each in the transaction of what it announces.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::bus::{BusMessage, MessageBus};
use holdfast_common::messages::Message;
use tokio::sync::Notify;

use crate::error::OrdersError;
use crate::store::{OutboxMessage, OutboxStore, RepoError};

/// The bus envelope of `message`, as the outbox keeps it until it is sent.
pub fn message<M: Message>(message: &M) -> Result<OutboxMessage, OrdersError> {
    let message = BusMessage::of(message).map_err(|e| RepoError::Corrupt(e.to_string()))?;
    Ok(OutboxMessage {
        id: message.message_id.to_string(),
        routing_key: message.routing_key.clone(),
        payload: serde_json::to_string(&message).map_err(|e| RepoError::Corrupt(e.to_string()))?,
    })
}

const BATCH: u32 = 100;
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long a relay's claim on the messages it publishes lasts: far longer than publishing a
/// batch takes, short enough that a relay that died holds up its messages only briefly.
const LEASE: Duration = Duration::from_secs(10);

/// Starts the relay; `wake` makes it look at the outbox right away (after a purchase).
pub fn spawn(outbox: Arc<dyn OutboxStore>, bus: Arc<dyn MessageBus>, wake: Arc<Notify>) {
    tokio::spawn(async move {
        loop {
            let published_all = relay_once(&*outbox, &*bus).await;
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
pub async fn relay_once(outbox: &dyn OutboxStore, bus: &dyn MessageBus) -> bool {
    let now = crate::domain::now_millis();
    let lease_until = now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    let pending = match outbox.claim_outbox(BATCH, now, lease_until).await {
        Ok(pending) => pending,
        Err(error) => {
            tracing::warn!(%error, "cannot read the outbox");
            return false;
        }
    };
    for (n, entry) in pending.iter().enumerate() {
        let message: BusMessage = match serde_json::from_str(&entry.payload) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(%error, id = %entry.id, "outbox message is not a bus message; skipping it");
                let _ = outbox.mark_sent(&entry.id).await;
                continue;
            }
        };
        if let Err(error) = bus.publish(&message).await {
            tracing::warn!(%error, id = %entry.id, "outbox message not published yet");
            let unpublished: Vec<String> = pending[n..].iter().map(|m| m.id.clone()).collect();
            if let Err(error) = outbox.release_claims(&unpublished).await {
                tracing::warn!(%error, "claims on unpublished outbox messages left to run out");
            }
            return false;
        }
        if let Err(error) = outbox.mark_sent(&entry.id).await {
            tracing::warn!(%error, id = %entry.id, "published but not marked sent; it will be sent again");
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use holdfast_common::bus::{BusError, MemoryBus, Subscription};
    use holdfast_common::docstore::SqliteDb;

    use super::*;
    use crate::domain::order::Order;
    use crate::store::{NewPurchase, OrderStore, OutboxMessage, SCHEMA, SqliteOrders};

    /// A bus that refuses everything, as RabbitMQ does while it is down.
    struct DownBus;

    #[async_trait]
    impl MessageBus for DownBus {
        async fn publish(&self, _: &BusMessage) -> Result<(), BusError> {
            Err(BusError::Unavailable("down".into()))
        }
        async fn subscribe(&self, _: &str, _: &[&str]) -> Result<Subscription, BusError> {
            Err(BusError::Unavailable("down".into()))
        }
        async fn subscribe_replica(&self, _: &str, _: &[&str]) -> Result<Subscription, BusError> {
            Err(BusError::Unavailable("down".into()))
        }
        async fn dead_letters(
            &self,
        ) -> Result<holdfast_common::bus::DeadLetterSubscription, BusError> {
            Err(BusError::Unavailable("down".into()))
        }
        async fn redrive(&self, _: &str, _: &str) -> Result<(), BusError> {
            Err(BusError::Unavailable("down".into()))
        }
        async fn ping(&self) -> Result<(), BusError> {
            Err(BusError::Unavailable("down".into()))
        }
    }

    fn purchase_with(message: &BusMessage) -> NewPurchase {
        NewPurchase {
            order: Order {
                order_id: crate::domain::ids::OrderId::new(),
                user_id: "u".into(),
                event_id: "e".into(),
                seat_ids: vec!["R1-S1".into()],
                amount_minor: 100,
                currency: "INR".into(),
                payment_intent_id: "pi".into(),
                status: crate::domain::order::OrderStatus::Bought,
                created_at_ms: 1,
                cancelled_seat_ids: Vec::new(),
                cancelled_at_ms: Vec::new(),
                refunded_minor: 0,
                revision: 0,
                email: None,
            },
            tickets: Vec::new(),
            idempotency: None,
            outbox: OutboxMessage {
                id: message.message_id.to_string(),
                routing_key: message.routing_key.clone(),
                payload: serde_json::to_string(message).unwrap(),
            },
        }
    }

    #[tokio::test]
    async fn messages_stay_pending_while_the_bus_is_down_and_go_out_once_it_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.sqlite3");
        let db = SqliteDb::open(&path, SCHEMA.sqlite_migrations)
            .await
            .unwrap();
        let orders = SqliteOrders::new(db);
        let message =
            BusMessage::with_version("order.purchased", 1, serde_json::json!({"orderId": "o1"}))
                .unwrap();
        orders.purchase(&purchase_with(&message)).await.unwrap();

        assert!(!relay_once(&orders, &DownBus).await);
        assert_eq!(orders.pending_outbox(10).await.unwrap().len(), 1);

        // A restart: a new process opens the same store and finds the message still pending.
        drop(orders);
        let orders = SqliteOrders::new(
            SqliteDb::open(&path, SCHEMA.sqlite_migrations)
                .await
                .unwrap(),
        );
        let bus = Arc::new(MemoryBus::new());
        let mut consumer = bus.subscribe("ml", &["order.*"]).await.unwrap();
        assert!(relay_once(&orders, &*bus).await);
        assert!(orders.pending_outbox(10).await.unwrap().is_empty());
        let delivery = consumer.next().await.unwrap();
        assert_eq!(delivery.message, message);
        delivery.ack().await.unwrap();
    }
}
