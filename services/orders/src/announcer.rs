//! Hold announcements (`hold.created|released|expired`), published after the answer.
//!
//! A hold's answer does not wait for the bus (on RabbitMQ, a publisher confirm): handlers queue
//! the message and one task per process publishes the queue in order. Holds are short-lived and
//! rebuildable from the TTL store, so an announcement the bus refuses, or one that finds the
//! queue full, is logged and not retried (orders, which must not be lost, go through the
//! outbox instead).

use std::sync::Arc;

use holdfast_common::bus::{BusMessage, MessageBus};
use holdfast_common::messages::{HoldCreated, HoldExpired, HoldReleased, HoldSeats};
use tokio::sync::mpsc;

use crate::domain::ids::{EventId, HoldId, SeatId};

/// How many announcements may wait for the bus before new ones are dropped (and logged).
const QUEUE: usize = 65_536;

/// Queues hold announcements for the publishing task; cheap to clone.
#[derive(Clone)]
pub struct Announcer {
    queue: mpsc::Sender<BusMessage>,
}

impl Announcer {
    /// Starts the task publishing on `bus`; it ends once every `Announcer` is dropped.
    pub fn spawn(bus: Arc<dyn MessageBus>) -> Self {
        let (queue, mut waiting) = mpsc::channel::<BusMessage>(QUEUE);
        tokio::spawn(async move {
            while let Some(message) = waiting.recv().await {
                if let Err(error) = bus.publish(&message).await {
                    tracing::warn!(%error, routing_key = %message.routing_key, "hold change not published");
                }
            }
        });
        Self { queue }
    }

    /// Queues the message that `change` happened to the hold of `hold_id`.
    pub fn hold(
        &self,
        change: HoldChange,
        hold_id: &HoldId,
        user_id: &str,
        event_id: &EventId,
        seat_ids: &[SeatId],
    ) {
        let seats = HoldSeats {
            hold_id: hold_id.to_string(),
            user_id: user_id.to_string(),
            event_id: event_id.to_string(),
            seat_ids: SeatId::texts(seat_ids),
        };
        let message = match change {
            HoldChange::Created => BusMessage::of(&HoldCreated(seats)),
            HoldChange::Released => BusMessage::of(&HoldReleased(seats)),
            HoldChange::Expired => BusMessage::of(&HoldExpired(seats)),
        };
        let queued = message
            .map_err(|e| e.to_string())
            .and_then(|message| self.queue.try_send(message).map_err(|e| e.to_string()));
        if let Err(error) = queued {
            tracing::warn!(%error, ?change, %hold_id, "hold change not announced");
        }
    }
}

/// What happened to a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldChange {
    Created,
    Released,
    Expired,
}
