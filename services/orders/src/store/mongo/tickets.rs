//! Tickets on MongoDB: written and revoked inside the purchase's and the cancellation's
//! transactions (see `orders.rs`), read here.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::ClientSession;
use mongodb::bson::doc;

use super::MongoOrders;
use super::records::TicketDocument;
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::now_millis;
use crate::domain::order::Order;
use crate::domain::ticket::{Ticket, TicketStatus};
use crate::store::{ChangeCursor, RepoError, TicketStore};

impl MongoOrders {
    /// Writes the new order's tickets inside the purchase's transaction.
    pub(super) async fn insert_tickets(
        &self,
        session: &mut ClientSession,
        order: &Order,
    ) -> Result<(), mongodb::error::Error> {
        let tickets: Vec<TicketDocument> = Ticket::issue(order)
            .iter()
            .map(TicketDocument::from)
            .collect();
        self.tickets
            .insert_many(tickets)
            .session(&mut *session)
            .await?;
        Ok(())
    }

    /// Revokes the tickets of the order's `seats` inside the cancellation's transaction.
    pub(super) async fn revoke_tickets(
        &self,
        session: &mut ClientSession,
        order_id: &OrderId,
        seats: &[SeatId],
    ) -> Result<(), mongodb::error::Error> {
        self.tickets
            .update_many(
                doc! {
                    "orderId": order_id,
                    "seatId": { "$in": seats },
                    "status": TicketStatus::Valid.as_str(),
                },
                doc! { "$set": {
                    "status": TicketStatus::Cancelled.as_str(),
                    "inside": false,
                    "changedAt": now_millis(),
                } },
            )
            .session(&mut *session)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl TicketStore for MongoOrders {
    async fn tickets_of_order(&self, order_id: &OrderId) -> Result<Vec<Ticket>, RepoError> {
        let documents: Vec<TicketDocument> = self
            .tickets
            .find(doc! { "orderId": order_id })
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(Ticket::from).collect())
    }

    async fn ticket(&self, ticket_id: &str) -> Result<Option<Ticket>, RepoError> {
        Ok(self
            .tickets
            .find_one(doc! { "_id": ticket_id })
            .await?
            .map(Ticket::from))
    }

    async fn tickets_changed(
        &self,
        event_id: &EventId,
        after: &ChangeCursor,
        limit: usize,
    ) -> Result<Vec<Ticket>, RepoError> {
        let documents: Vec<TicketDocument> = self
            .tickets
            .find(doc! {
                "eventId": event_id,
                "$or": [
                    { "changedAt": { "$gt": after.changed_at_ms } },
                    { "changedAt": after.changed_at_ms, "_id": { "$gt": &after.ticket_id } },
                ],
            })
            .sort(doc! { "changedAt": 1, "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(Ticket::from).collect())
    }
}
