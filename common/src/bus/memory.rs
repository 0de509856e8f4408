//! The in-process bus: named queues with topic bindings, inside one process.
//!
//! Used by the all-in-one launcher and tests. Queues live as long as the bus, so a message
//! published while a queue has no consumer waits for the next one, as it would on RabbitMQ.

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
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl MessageBus for MemoryBus {
    async fn publish(&self, message: &BusMessage) -> Result<(), BusError> {
        let queues = lock(&self.queues);
        for queue in queues.values() {
            if queue.is_bound_to(&message.routing_key) {
                queue.push(message.clone(), false);
            }
        }
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
}
