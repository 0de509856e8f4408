//! The message bus port: domain events between services (`event.created`, `order.purchased`…).
//!
//! Semantics follow a RabbitMQ topic exchange, and both adapters keep them:
//! - a consumer names a durable queue and binds it with topic patterns (`order.*`, `#`);
//! - every queue whose pattern matches a routing key gets its own copy of each message;
//! - consumers of the same queue compete for its messages;
//! - a queue outlives its consumers: what is published while nobody consumes (a restart, a
//!   dropped connection) is delivered when a consumer is back;
//! - delivery is at least once: a message not acknowledged is delivered again, so consumers
//!   de-duplicate by [`BusMessage::message_id`];
//! - a work queue's message that cannot be handled does not block it: a consumer hands a
//!   message it can never handle (undecodable) to the dead letters with its reason
//!   ([`Delivery::dead_letter`]), and one delivered [`DEFAULT_DELIVERY_LIMIT`] times (the bus's
//!   limit) without being acknowledged goes there too (reason `delivery_limit`). Dead letters
//!   wait in one queue of their own ([`MessageBus::dead_letters`]) until an operator sends them
//!   back to the queue they came from ([`MessageBus::redrive`]).
//!
//! [`RabbitBus`] is the distributed adapter (`AMQP_URL`; work queues are quorum queues), and
//! [`MemoryBus`] the in-process one.

mod memory;
mod rabbitmq;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use self::memory::MemoryBus;
pub use self::rabbitmq::RabbitBus;

/// The name of the topic exchange every message goes through.
pub const EXCHANGE: &str = "holdfast";

/// How many times a work queue's message is delivered before it goes to the dead letters,
/// unless `BUS_DELIVERY_LIMIT` says otherwise.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 10;

/// The reason of a dead letter that was delivered as many times as the limit allows.
pub const DELIVERY_LIMIT_REASON: &str = "delivery_limit";

/// The reason of a dead letter its consumer cannot read, and why: `undecodable: <why>`.
pub fn unreadable_reason(why: impl std::fmt::Display) -> String {
    format!("undecodable: {why}")
}

/// A message taken out of its work queue, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The queue it was taken out of, and goes back to when re-driven.
    pub queue: String,
    pub routing_key: String,
    /// [`DELIVERY_LIMIT_REASON`], or what the consumer that gave up on it said.
    pub reason: String,
    /// The message as it travelled: a [`BusMessage`] in JSON, unless it was undecodable.
    pub body: String,
    /// The [`BusMessage::message_id`], when the body has one.
    pub message_id: Option<String>,
}

impl DeadLetter {
    /// `message`, given up on in `queue` for `reason`.
    pub fn of(message: &BusMessage, queue: &str, reason: &str) -> Self {
        Self {
            queue: queue.to_string(),
            routing_key: message.routing_key.clone(),
            reason: reason.to_string(),
            body: serde_json::to_string(message).unwrap_or_default(),
            message_id: Some(message.message_id.to_string()),
        }
    }
}

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

    /// Consumes the dead letters (see the module docs). Each is acknowledged once it is kept
    /// elsewhere; one dropped unacknowledged is delivered again.
    async fn dead_letters(&self) -> Result<DeadLetterSubscription, BusError>;

    /// Sends `body` (a dead letter's) back to the work queue `queue` alone, not to every queue
    /// bound to its routing key, with a fresh delivery count; returns once the bus has it.
    async fn redrive(&self, queue: &str, body: &str) -> Result<(), BusError>;

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
    Amqp(rabbitmq::Consuming),
}

impl Subscription {
    /// The next message; `None` once the bus has shut down for good.
    pub async fn next(&mut self) -> Option<Delivery> {
        match &mut self.source {
            Source::InProcess(queue) => queue.next().await,
            Source::Amqp(consuming) => consuming.next().await,
        }
    }

    /// Closes the consumer's connection as if the network had dropped it; the subscription
    /// reconnects by itself. For tests of that recovery.
    #[cfg(test)]
    pub(crate) fn drop_connection(&self) {
        if let Source::Amqp(consuming) = &self.source {
            consuming.drop_connection();
        }
    }
}

/// The dead letters, oldest first.
pub struct DeadLetterSubscription {
    source: DeadSource,
}

enum DeadSource {
    InProcess(std::sync::Arc<memory::DeadLetters>),
    Amqp(rabbitmq::Consuming),
}

impl DeadLetterSubscription {
    /// The next dead letter; `None` once the bus has shut down for good.
    pub async fn next(&mut self) -> Option<DeadLetterDelivery> {
        match &mut self.source {
            DeadSource::InProcess(letters) => letters.next().await,
            DeadSource::Amqp(consuming) => consuming.next_dead_letter().await,
        }
    }
}

/// One dead letter received; acknowledge it once kept.
pub struct DeadLetterDelivery {
    pub letter: DeadLetter,
    acknowledger: DeadAcknowledger,
}

enum DeadAcknowledger {
    /// Holds the dead letters to put this one back if it is dropped unacknowledged.
    InProcess(Option<std::sync::Arc<memory::DeadLetters>>),
    Amqp(lapin::Acker),
}

impl DeadLetterDelivery {
    /// Confirms the dead letter is kept; it will not be delivered again.
    pub async fn ack(mut self) -> Result<(), BusError> {
        match &mut self.acknowledger {
            DeadAcknowledger::Amqp(acker) => rabbitmq::ack(acker).await,
            DeadAcknowledger::InProcess(letters) => {
                letters.take();
                Ok(())
            }
        }
    }
}

impl DeadLetterDelivery {
    /// Hands the dead letter back for another delivery (it could not be kept yet).
    pub async fn requeue(mut self) -> Result<(), BusError> {
        match &mut self.acknowledger {
            DeadAcknowledger::Amqp(acker) => rabbitmq::requeue(acker).await,
            // Dropped right after this, it goes back to the list.
            DeadAcknowledger::InProcess(_) => Ok(()),
        }
    }
}

impl Drop for DeadLetterDelivery {
    fn drop(&mut self) {
        if let DeadAcknowledger::InProcess(Some(letters)) = &self.acknowledger {
            letters.push(self.letter.clone());
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
    /// Holds the queue to put the message back on if it is dropped unacknowledged, and how
    /// many times it was delivered before this time.
    InProcess(Option<std::sync::Arc<memory::Queue>>, u32),
    Amqp(rabbitmq::AmqpAcker),
    Done,
}

impl Delivery {
    /// Confirms the message was handled; it will not be delivered again.
    pub async fn ack(mut self) -> Result<(), BusError> {
        match std::mem::replace(&mut self.acknowledger, Acknowledger::Done) {
            Acknowledger::Amqp(acker) => rabbitmq::ack(&acker.acker).await,
            Acknowledger::InProcess(..) | Acknowledger::Done => Ok(()),
        }
    }

    /// Hands the message back to the queue for another delivery (or to the dead letters, once
    /// it has been delivered as many times as the bus allows).
    pub async fn requeue(mut self) -> Result<(), BusError> {
        match std::mem::replace(&mut self.acknowledger, Acknowledger::Done) {
            Acknowledger::Amqp(acker) => rabbitmq::requeue(&acker.acker).await,
            Acknowledger::InProcess(Some(queue), deliveries) => {
                queue.returned(self.message.clone(), deliveries + 1);
                Ok(())
            }
            Acknowledger::InProcess(None, _) | Acknowledger::Done => Ok(()),
        }
    }

    /// Gives the message up: it goes to the dead letters with `reason` and is not delivered
    /// here again. For a message no retry can help (one this consumer cannot read).
    pub async fn dead_letter(mut self, reason: &str) -> Result<(), BusError> {
        match std::mem::replace(&mut self.acknowledger, Acknowledger::Done) {
            Acknowledger::Amqp(acker) => acker.dead_letter(&self.message, reason).await,
            Acknowledger::InProcess(Some(queue), _) => {
                queue.dead_letter(&self.message, reason);
                Ok(())
            }
            Acknowledger::InProcess(None, _) | Acknowledger::Done => Ok(()),
        }
    }
}

impl Delivery {
    /// Gives up a message its consumer cannot read (`why`): no redelivery can help, so it goes
    /// to the dead letters with [`unreadable_reason`]. A failure to settle is logged (the
    /// message then comes back).
    pub async fn unreadable(self, why: impl std::fmt::Display) {
        let reason = unreadable_reason(why);
        tracing::error!(routing_key = %self.message.routing_key, message_id = %self.message.message_id, %reason, "a message this consumer cannot read goes to the dead letters");
        if let Err(error) = self.dead_letter(&reason).await {
            tracing::warn!(%error, "cannot settle an unreadable delivery");
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // As with AMQP, a message dropped unacknowledged is delivered again.
        if let Acknowledger::InProcess(Some(queue), deliveries) = &self.acknowledger {
            queue.returned(self.message.clone(), deliveries + 1);
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
