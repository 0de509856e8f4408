//! Every committed purchase reaches the seat board, even when the process that committed it
//! died before putting its seats there (between the store's commit and the board step of
//! `checkout`): each `order.purchased` — published from the outbox by whichever replica's
//! relay finds it, at least once — marks its seats sold on the board. Marking leaves seats
//! recorded already as they are and never revives a cancelled sale, so in the usual case (the
//! sale is on the board already) nothing changes, and a redelivery changes nothing either.
//! Without it the seats of such a purchase would look free once the dead hold ran out.

use holdfast_common::bus::MessageBus;
use holdfast_common::messages::{Message, OrderPurchased};

use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::seat_changes::{SeatChange, SeatChanges};
use crate::store::SoldSeats;
use crate::store::holds::Holds;

/// The work queue: one replica marks each purchase.
const QUEUE: &str = "orders.sales";

/// Starts marking the seats of every purchase announced from now on (and of those waiting
/// in the queue) sold on the board.
pub async fn spawn(bus: &dyn MessageBus, holds: Holds, changes: SeatChanges) -> anyhow::Result<()> {
    let mut purchases = bus.subscribe(QUEUE, &[OrderPurchased::TYPE]).await?;
    tokio::spawn(async move {
        while let Some(delivery) = purchases.next().await {
            let purchase = match delivery.message.decode::<OrderPurchased>() {
                Ok(purchase) => purchase,
                Err(error) => {
                    delivery.unreadable(error).await;
                    continue;
                }
            };
            let Some(event_id) = EventId::parse(&purchase.event_id) else {
                let why = format!("no event {:?}", purchase.event_id);
                delivery.unreadable(why).await;
                continue;
            };
            let order_id = OrderId::named(&purchase.order_id);
            let sold: SoldSeats = SeatId::all(&purchase.seat_ids)
                .into_iter()
                .map(|seat| (seat, order_id.clone()))
                .collect();
            let settled = match holds.board().mark_sold(&event_id, &sold).await {
                Ok(()) => {
                    changes.after(SeatChange::Refreshed(&event_id)).await;
                    delivery.ack().await
                }
                Err(error) => {
                    tracing::warn!(%error, %event_id, "sold seats not marked on the board yet; redelivering");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    delivery.requeue().await
                }
            };
            if let Err(error) = settled {
                tracing::warn!(%error, "cannot settle an order.purchased delivery");
            }
        }
    });
    Ok(())
}
