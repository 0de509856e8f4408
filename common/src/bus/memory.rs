//! The in-process bus: named queues with topic bindings, inside one process.
//!
//! Used by the all-in-one launcher and tests. Queues live as long as the bus, so a message
//! published while a queue has no consumer waits for the next one, as it would on RabbitMQ.
//! A bus made for a process ([`MemoryBus::until_subscribed`]) holds what is published while
//! the process starts and routes it once every consumer has subscribed
//! ([`MessageBus::subscribers_ready`]): after a restart, queues are declared again by their
//! consumers, and a message routed before that would find no queue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{
    Acknowledger, BusError, BusMessage, Delivery, MessageBus, Source, Subscription, topic_matches,
};
use crate::sync::lock;

/// The in-process adapter of [`MessageBus`].
#[derive(Default)]
pub struct MemoryBus {
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    /// Messages published before the consumers subscribed, in order; `None` once routing.
    held: Mutex<Option<Vec<BusMessage>>>,
}

/// One named queue: its bindings and the messages waiting in it.
pub(super) struct Queue {
    bindings: Mutex<Vec<String>>,
    messages: Mutex<VecDeque<(BusMessage, bool)>>,
    arrived: Notify,
}

impl Queue {
    pub(super) fn push(&self, message: BusMessage, redelivered: bool) {
        lock(&self.messages).push_back((message, redelivered));
        self.arrived.notify_one();
    }

    pub(super) async fn next(self: &Arc<Self>) -> Option<Delivery> {
        loop {
            // Register interest before looking, so a push between the look and the wait
            // is not missed.
            let arrived = self.arrived.notified();
            if let Some((message, redelivered)) = lock(&self.messages).pop_front() {
                return Some(Delivery {
                    message,
                    redelivered,
                    acknowledger: Acknowledger::InProcess(Some(self.clone())),
                });
            }
            arrived.await;
        }
    }

    fn is_bound_to(&self, routing_key: &str) -> bool {
        lock(&self.bindings)
            .iter()
            .any(|pattern| topic_matches(pattern, routing_key))
    }
}

impl MemoryBus {
    /// A bus that routes every message at once.
    pub fn new() -> Self {
        Self::default()
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
                queue.push(message.clone(), false);
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
                    bindings: Mutex::new(Vec::new()),
                    messages: Mutex::new(VecDeque::new()),
                    arrived: Notify::new(),
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
