//! The in-process bus: named queues with topic bindings, inside one process.
//!
//! Used by the all-in-one launcher and tests. Queues live as long as the bus, so a message
//! published while a queue has no consumer waits for the next one, as it would on RabbitMQ.
//! A bus made for a process ([`MemoryBus::until_subscribed`]) holds what is published while
//! the process starts and routes it once every consumer has subscribed
//! ([`MessageBus::subscribers_ready`]): after a restart, queues are declared again by their
//! consumers, and a message routed before that would find no queue. Dead letters wait in a
//! list of the bus's own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{
    Acknowledger, BusError, BusMessage, DEFAULT_DELIVERY_LIMIT, DELIVERY_LIMIT_REASON,
    DeadAcknowledger, DeadLetter, DeadLetterDelivery, DeadLetterSubscription, DeadSource, Delivery,
    MessageBus, Source, Subscription, topic_matches,
};
use crate::sync::lock;

/// The in-process adapter of [`MessageBus`].
pub struct MemoryBus {
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    /// Messages published before the consumers subscribed, in order; `None` once routing.
    held: Mutex<Option<Vec<BusMessage>>>,
    dead: Arc<DeadLetters>,
    /// Deliveries of one message before it goes to the dead letters.
    delivery_limit: u32,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self {
            queues: Mutex::default(),
            held: Mutex::default(),
            dead: Arc::default(),
            delivery_limit: DEFAULT_DELIVERY_LIMIT,
        }
    }
}

/// A list that consumers wait on: a queue's messages (with how many times each was delivered)
/// or the dead letters.
struct Waiting<T> {
    items: Mutex<VecDeque<T>>,
    arrived: Notify,
}

impl<T> Default for Waiting<T> {
    fn default() -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            arrived: Notify::new(),
        }
    }
}

impl<T> Waiting<T> {
    fn push(&self, item: T) {
        lock(&self.items).push_back(item);
        self.arrived.notify_one();
    }

    async fn pop(&self) -> T {
        loop {
            // Register interest before looking, so a push between the look and the wait
            // is not missed.
            let arrived = self.arrived.notified();
            if let Some(item) = lock(&self.items).pop_front() {
                return item;
            }
            arrived.await;
        }
    }
}

/// One named queue: its bindings and the messages waiting in it.
pub(super) struct Queue {
    name: String,
    bindings: Mutex<Vec<String>>,
    messages: Waiting<(BusMessage, u32)>,
    delivery_limit: u32,
    dead: Arc<DeadLetters>,
}

impl Queue {
    /// A message back from a consumer that did not acknowledge it, after `deliveries`: waiting
    /// again, or a dead letter once that is the limit.
    pub(super) fn returned(&self, message: BusMessage, deliveries: u32) {
        if deliveries >= self.delivery_limit {
            tracing::warn!(queue = %self.name, message_id = %message.message_id, deliveries, "message dead-lettered after its last delivery");
            self.dead_letter(&message, DELIVERY_LIMIT_REASON);
        } else {
            self.messages.push((message, deliveries));
        }
    }

    pub(super) fn dead_letter(&self, message: &BusMessage, reason: &str) {
        self.dead.push(DeadLetter::of(message, &self.name, reason));
    }

    pub(super) async fn next(self: &Arc<Self>) -> Option<Delivery> {
        let (message, deliveries) = self.messages.pop().await;
        Some(Delivery {
            message,
            redelivered: deliveries > 0,
            acknowledger: Acknowledger::InProcess(Some(self.clone()), deliveries),
        })
    }

    fn is_bound_to(&self, routing_key: &str) -> bool {
        lock(&self.bindings)
            .iter()
            .any(|pattern| topic_matches(pattern, routing_key))
    }
}

/// The dead letters of an in-process bus.
#[derive(Default)]
pub(super) struct DeadLetters {
    letters: Waiting<DeadLetter>,
}

impl DeadLetters {
    pub(super) fn push(&self, letter: DeadLetter) {
        self.letters.push(letter);
    }

    pub(super) async fn next(self: &Arc<Self>) -> Option<DeadLetterDelivery> {
        let letter = self.letters.pop().await;
        Some(DeadLetterDelivery {
            letter,
            acknowledger: DeadAcknowledger::InProcess(Some(self.clone())),
        })
    }
}

impl MemoryBus {
    /// A bus that routes every message at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// This bus, dead-lettering a message after `limit` deliveries (at least one).
    pub fn with_delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = limit.max(1);
        self
    }

    /// A bus that holds what is published until [`MessageBus::subscribers_ready`].
    pub fn until_subscribed() -> Self {
        Self {
            held: Mutex::new(Some(Vec::new())),
            ..Self::default()
        }
    }

    fn route(&self, message: &BusMessage) {
        let queues = lock(&self.queues);
        for queue in queues.values() {
            if queue.is_bound_to(&message.routing_key) {
                queue.messages.push((message.clone(), 0));
            }
        }
    }
}

#[async_trait]
impl MessageBus for MemoryBus {
    async fn publish(&self, message: &BusMessage) -> Result<(), BusError> {
        if let Some(held) = lock(&self.held).as_mut() {
            held.push(message.clone());
            return Ok(());
        }
        self.route(message);
        Ok(())
    }

    async fn subscribe(&self, queue: &str, bindings: &[&str]) -> Result<Subscription, BusError> {
        let queue = lock(&self.queues)
            .entry(queue.to_string())
            .or_insert_with(|| {
                Arc::new(Queue {
                    name: queue.to_string(),
                    bindings: Mutex::new(Vec::new()),
                    messages: Waiting::default(),
                    delivery_limit: self.delivery_limit,
                    dead: self.dead.clone(),
                })
            })
            .clone();
        {
            let mut existing = lock(&queue.bindings);
            for pattern in bindings {
                if !existing.iter().any(|p| p == pattern) {
                    existing.push(pattern.to_string());
                }
            }
        }
        Ok(Subscription {
            source: Source::InProcess(queue),
        })
    }

    async fn subscribe_replica(
        &self,
        base: &str,
        bindings: &[&str],
    ) -> Result<Subscription, BusError> {
        self.subscribe(&super::replica_queue(base), bindings).await
    }

    async fn dead_letters(&self) -> Result<DeadLetterSubscription, BusError> {
        Ok(DeadLetterSubscription {
            source: DeadSource::InProcess(self.dead.clone()),
        })
    }

    async fn redrive(&self, queue: &str, body: &str) -> Result<(), BusError> {
        let message: BusMessage = serde_json::from_str(body)
            .map_err(|e| BusError::Refused(format!("not a bus message: {e}")))?;
        let target = lock(&self.queues).get(queue).cloned();
        let target = target.ok_or_else(|| BusError::Refused(format!("no queue named {queue}")))?;
        target.messages.push((message, 0));
        Ok(())
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn subscribers_ready(&self) {
        // Routed under the lock, so a message published meanwhile waits behind these.
        let mut held = lock(&self.held);
        for message in held.take().unwrap_or_default() {
            self.route(&message);
        }
    }
}
