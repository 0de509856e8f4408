//! The message bus port: domain events between services (`event.created`, `order.purchased`…).
//!
//! Semantics follow a RabbitMQ topic exchange, and both adapters keep them:
//! - a consumer names a durable queue and binds it with topic patterns (`order.*`, `#`);
//! - every queue whose pattern matches a routing key gets its own copy of each message;
//! - consumers of the same queue compete for its messages;
//! - a queue outlives its consumers: what is published while nobody consumes (a restart, a
//!   dropped connection) is delivered when a consumer is back;
//! - delivery is at least once: a message not acknowledged is delivered again, so consumers
//!   de-duplicate by [`BusMessage::message_id`].
//!
//! [`RabbitBus`] is the distributed adapter (`AMQP_URL`), [`MemoryBus`] the in-process one.

mod memory;
mod rabbitmq;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;
use uuid::Uuid;

pub use self::memory::MemoryBus;
pub use self::rabbitmq::RabbitBus;

/// The name of the topic exchange every message goes through.
pub const EXCHANGE: &str = "holdfast";

/// A failure of the bus itself.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
    #[error("message refused by the bus: {0}")]
    Refused(String),
    #[error("message cannot be encoded: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// One domain event as it travels on the bus (JSON, camelCase): the envelope of a
/// [`crate::messages::Message`], built by [`BusMessage::of`] and read by [`BusMessage::decode`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusMessage {
    /// Unique per message; consumers use it to ignore redeliveries.
    pub message_id: Uuid,
    /// When it happened, RFC 3339 UTC (empty for messages stored before it was kept).
    #[serde(default)]
    pub occurred_at: String,
    /// The message type, also its routing key: `event.created`, `order.purchased`, …
    /// (`routingKey` in messages stored before the envelope named it `type`).
    #[serde(rename = "type", alias = "routingKey")]
    pub routing_key: String,
    /// The payload's schema version (1 for messages stored before versions were kept).
    #[serde(default = "first_version")]
    pub version: u32,
    pub payload: Value,
}

fn first_version() -> u32 {
    1
}

impl BusMessage {
    /// A new envelope of `payload` with a fresh id, stamped now. Services publish typed
    /// messages ([`BusMessage::of`]); this is for the bus's own tests and tools.
    pub fn with_version(
        routing_key: &str,
        version: u32,
        payload: impl Serialize,
    ) -> Result<Self, BusError> {
        Ok(Self {
            message_id: Uuid::new_v4(),
            occurred_at: crate::when::format_millis(crate::when::now_millis()),
            routing_key: routing_key.to_string(),
            version,
            payload: serde_json::to_value(payload)?,
        })
    }
}

/// Publishes messages and opens subscriptions.
#[async_trait]
pub trait MessageBus: Send + Sync + 'static {
    /// Publishes `message` under its routing key; returns once the bus has accepted it
    /// (on RabbitMQ: the publisher confirm has arrived).
    async fn publish(&self, message: &BusMessage) -> Result<(), BusError>;

    /// Consumes the durable queue `queue`, creating it and binding it to every pattern in
    /// `bindings` first. Returns once the bindings are in place, so a message published after
    /// this returns is delivered.
    async fn subscribe(&self, queue: &str, bindings: &[&str]) -> Result<Subscription, BusError>;

    /// Consumes a queue of this process alone, `<base>.<random>`, bound to `bindings`: every
    /// replica that subscribes gets its own copy of each message (for what every replica must
    /// see, such as cache invalidations). The queue is not durable and goes away with the
    /// process (on RabbitMQ: auto-deleted, and expired after a minute unused); messages sent
    /// while a replica's consumer reconnects may be lost to it.
    async fn subscribe_replica(
        &self,
        base: &str,
        bindings: &[&str],
    ) -> Result<Subscription, BusError>;

    /// Checks that the bus answers.
    async fn ping(&self) -> Result<(), BusError>;

    /// Every consumer of this process has subscribed (called once the services are built).
    /// The in-process bus holds what is published before (an outbox relay draining rows left
    /// unsent at the last stop) and routes it now, so no message is lost for a queue that was
    /// not declared yet; RabbitMQ's durable queues outlive the process, so it has nothing to do.
    fn subscribers_ready(&self) {}
}

/// The messages of one queue, in arrival order. Dropping it stops consuming; the queue and its
/// unacknowledged messages stay.
pub struct Subscription {
    source: Source,
}

enum Source {
    InProcess(std::sync::Arc<memory::Queue>),
    Amqp {
        deliveries: mpsc::Receiver<Delivery>,
        #[cfg_attr(not(test), allow(dead_code))]
        control: rabbitmq::ConsumerControl,
        _stop: DropGuard,
    },
}

impl Subscription {
    /// The next message; `None` once the bus has shut down for good.
    pub async fn next(&mut self) -> Option<Delivery> {
        match &mut self.source {
            Source::InProcess(queue) => queue.next().await,
            Source::Amqp { deliveries, .. } => deliveries.recv().await,
        }
    }

    /// Closes the consumer's connection as if the network had dropped it; the subscription
    /// reconnects by itself. For tests of that recovery.
    #[cfg(test)]
    pub(crate) fn drop_connection(&self) {
        if let Source::Amqp { control, .. } = &self.source {
            control.drop_connection();
        }
    }
}

/// One received message; acknowledge it once handled.
pub struct Delivery {
    pub message: BusMessage,
    /// True when this message was delivered before and not acknowledged.
    pub redelivered: bool,
    acknowledger: Acknowledger,
}

enum Acknowledger {
    /// Holds the queue to put the message back on if it is dropped unacknowledged.
    InProcess(Option<std::sync::Arc<memory::Queue>>),
    Amqp(lapin::Acker),
    Done,
}

impl Delivery {
    /// Confirms the message was handled; it will not be delivered again.
    pub async fn ack(mut self) -> Result<(), BusError> {
        match std::mem::replace(&mut self.acknowledger, Acknowledger::Done) {
            Acknowledger::Amqp(acker) => rabbitmq::ack(&acker).await,
            Acknowledger::InProcess(_) | Acknowledger::Done => Ok(()),
        }
    }

    /// Hands the message back to the queue for another delivery.
    pub async fn requeue(mut self) -> Result<(), BusError> {
        match std::mem::replace(&mut self.acknowledger, Acknowledger::Done) {
            Acknowledger::Amqp(acker) => rabbitmq::requeue(&acker).await,
            Acknowledger::InProcess(Some(queue)) => {
                queue.push(self.message.clone(), true);
                Ok(())
            }
            Acknowledger::InProcess(None) | Acknowledger::Done => Ok(()),
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // As with AMQP, a message dropped unacknowledged is delivered again.
        if let Acknowledger::InProcess(Some(queue)) = &self.acknowledger {
            queue.push(self.message.clone(), true);
        }
    }
}

/// The name of one replica's own queue: `<base>.<random>`.
fn replica_queue(base: &str) -> String {
    format!("{base}.{}", Uuid::new_v4().simple())
}

/// Whether a topic `pattern` (`*` = one word, `#` = zero or more words) matches `routing_key`.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    fn matches(pattern: &[&str], key: &[&str]) -> bool {
        match (pattern.split_first(), key.split_first()) {
            (None, None) => true,
            (Some((&"#", rest)), _) => {
                matches(rest, key) || key.split_first().is_some_and(|(_, k)| matches(pattern, k))
            }
            (Some((&"*", rest)), Some((_, k))) => matches(rest, k),
            (Some((p, rest)), Some((w, k))) => p == w && matches(rest, k),
            _ => false,
        }
    }
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    matches(&pattern, &key)
}

#[cfg(test)]
mod topic_tests {
    use super::topic_matches;

    #[test]
    fn topic_patterns_follow_amqp_rules() {
        assert!(topic_matches("order.purchased", "order.purchased"));
        assert!(topic_matches("order.*", "order.purchased"));
        assert!(!topic_matches("order.*", "order.purchased.late"));
        assert!(!topic_matches("order.*", "event.created"));
        assert!(topic_matches("#", "event.created"));
        assert!(topic_matches("order.#", "order"));
        assert!(topic_matches("order.#", "order.a.b"));
        assert!(topic_matches("*.created", "event.created"));
        assert!(!topic_matches("*.created", "event.updated"));
        assert!(topic_matches("#.expired", "hold.expired"));
        assert!(!topic_matches("hold", "hold.expired"));
    }
}
