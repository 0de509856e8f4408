//! Keeps the bus's dead letters for operators: drains the dead-letter queue into the store
//! ([`crate::store::dead_letters`]), counting them by queue and kind of reason, and sends them
//! back to their queues when an admin asks ([`crate::http`]).
//!
//! The notifications service does it because it already is the bus's consumer of last resort,
//! with a store of its own, and its own dead mails are the other thing operators look at. Every
//! replica drains the one queue, as competing consumers.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::bus::{DeadLetterSubscription, MessageBus};
use holdfast_common::when::now_millis;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::error::NotifyError;
use crate::store::dead_letters::{DeadLetterLog, DeadLetterRecord, DeadLetterStatus};

/// How long to wait before taking a dead letter again that could not be kept.
const STORE_RETRY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadLabels {
    queue: String,
    /// `delivery_limit`, `undecodable`, or the consumer's word before any `:`.
    reason: String,
}

/// The dead letters' instruments.
#[derive(Clone, Default)]
pub struct DeadLetterMetrics {
    received: Family<DeadLabels, Counter>,
    waiting: Gauge,
    redriven: Counter,
}

impl DeadLetterMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "bus_dead_letters",
            "Bus messages given up on, by the queue they left and the kind of reason",
            self.received.clone(),
        );
        registry.register(
            "bus_dead_letters_waiting",
            "Dead letters kept and not re-driven yet",
            self.waiting.clone(),
        );
        registry.register(
            "bus_dead_letters_redriven",
            "Dead letters sent back to their queues",
            self.redriven.clone(),
        );
    }
}

/// The dead letters: where they are kept, the bus they go back to, and what is counted.
pub struct DeadLetters {
    pub log: Arc<dyn DeadLetterLog>,
    pub bus: Arc<dyn MessageBus>,
    pub metrics: DeadLetterMetrics,
}

impl DeadLetters {
    /// Subscribes to the dead-letter queue and keeps what arrives, in the background.
    pub async fn start(self: &Arc<Self>) -> Result<(), NotifyError> {
        let subscription = self.bus.dead_letters().await?;
        self.refresh_waiting().await;
        tokio::spawn(self.clone().keep_arriving(subscription));
        Ok(())
    }

    async fn keep_arriving(self: Arc<Self>, mut subscription: DeadLetterSubscription) {
        while let Some(delivery) = subscription.next().await {
            let letter = delivery.letter.clone();
            let record = DeadLetterRecord::new(letter.clone(), now_millis());
            let settled = match self.log.keep(&record).await {
                Ok(()) => {
                    tracing::warn!(queue = %letter.queue, reason = %letter.reason, id = %record.id, "a bus message was given up on; kept as a dead letter");
                    let reason = letter.reason.split(':').next().unwrap_or_default();
                    self.metrics
                        .received
                        .get_or_create(&DeadLabels {
                            queue: letter.queue.clone(),
                            reason: reason.trim().to_string(),
                        })
                        .inc();
                    self.refresh_waiting().await;
                    delivery.ack().await
                }
                Err(error) => {
                    tracing::warn!(%error, "a dead letter cannot be kept yet; it comes back");
                    tokio::time::sleep(STORE_RETRY).await;
                    delivery.requeue().await
                }
            };
            if let Err(error) = settled {
                tracing::warn!(%error, "cannot settle a dead letter with the bus");
            }
        }
    }

    async fn refresh_waiting(&self) {
        if let Ok(waiting) = self.log.waiting().await {
            self.metrics
                .waiting
                .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        }
    }

    /// Sends the waiting dead letter `id` back to its queue; the record, now re-driven.
    pub async fn redrive(&self, id: &str) -> Result<DeadLetterRecord, NotifyError> {
        let record = self
            .log
            .get(id)
            .await?
            .ok_or(NotifyError::NotFound("dead letter"))?;
        if record.status != DeadLetterStatus::Waiting {
            return Err(NotifyError::NotWaiting(
                "this dead letter was re-driven already",
            ));
        }
        // Sent, then marked: should two admins re-drive it at once, the queue gets it twice,
        // which consumers take as the redelivery it looks like (they de-duplicate by id).
        self.bus
            .redrive(&record.letter.queue, &record.letter.body)
            .await?;
        let now = now_millis();
        self.log.mark_redriven(id, now).await?;
        self.metrics.redriven.inc();
        self.refresh_waiting().await;
        tracing::info!(id, queue = %record.letter.queue, "dead letter re-driven");
        // What the re-drive made of it (it may have died again already).
        Ok(DeadLetterRecord {
            status: DeadLetterStatus::Redriven,
            redriven_at_ms: Some(now),
            ..record
        })
    }
}
