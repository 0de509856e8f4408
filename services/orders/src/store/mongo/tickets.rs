//! Tickets on MongoDB: written and revoked inside the purchase's and the cancellation's
//! transactions (see `orders.rs`), read here.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::ClientSession;
use mongodb::bson::doc;

use mongodb::error::TRANSIENT_TRANSACTION_ERROR;

use super::records::TicketDocument;
use super::{MongoOrders, TRANSACTION_ATTEMPTS};
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::now_millis;
use crate::domain::ticket::{Ticket, TicketPolicy, TicketStatus, TicketTransfer};
use crate::store::{ChangeCursor, OutboxMessage, RepoError, TicketStore};

impl MongoOrders {
    /// Writes the new order's tickets inside the purchase's transaction.
    pub(super) async fn insert_tickets(
        &self,
        session: &mut ClientSession,
        tickets: &[Ticket],
    ) -> Result<(), mongodb::error::Error> {
        if tickets.is_empty() {
            return Ok(());
        }
        let tickets: Vec<TicketDocument> = tickets.iter().map(TicketDocument::from).collect();
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

    async fn tickets_of_holder(&self, user_id: &str) -> Result<Vec<Ticket>, RepoError> {
        let documents: Vec<TicketDocument> = self
            .tickets
            .find(doc! { "holderId": user_id })
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(Ticket::from).collect())
    }

    async fn claim_ticket(
        &self,
        claim_hash: &str,
        email: &str,
        user_id: &str,
    ) -> Result<Option<String>, RepoError> {
        let claimed = self
            .tickets
            .find_one_and_update(
                doc! {
                    "claimHash": claim_hash,
                    "holderId": null,
                    "holderEmail": email.to_lowercase(),
                },
                doc! {
                    "$set": { "holderId": user_id, "changedAt": now_millis() },
                    "$unset": { "claimHash": "" },
                },
            )
            .await?;
        Ok(claimed.map(|t| Ticket::from(t).ticket_id))
    }

    async fn transfer(
        &self,
        t: &TicketTransfer,
        announce: &OutboxMessage,
    ) -> Result<bool, RepoError> {
        in_transaction!(self, |session| async {
            let reissued = self
                .tickets
                .update_one(
                    doc! {
                        "_id": &t.ticket_id,
                        "version": i64::from(t.from_version),
                        "status": TicketStatus::Valid.as_str(),
                        "enteredAt": null,
                        "transfers": { "$lt": i64::from(t.max_transfers) },
                    },
                    doc! {
                        "$set": {
                            "holderId": null,
                            "holderEmail": &t.to_email,
                            "secret": &t.new_secret,
                            "changedAt": t.at_ms,
                            "claimHash": &t.claim_hash,
                        },
                        "$inc": { "version": 1, "transfers": 1 },
                    },
                )
                .session(&mut session)
                .await?;
            if reissued.matched_count == 0 {
                return Ok(false);
            }
            self.transfers
                .insert_one(doc! {
                    "_id": &t.transfer_id,
                    "ticketId": &t.ticket_id,
                    "eventId": &t.event_id,
                    "fromUser": &t.from_user,
                    "fromEmail": &t.from_email,
                    "toEmail": &t.to_email,
                    "version": i64::from(t.from_version) + 1,
                    "createdAt": t.at_ms,
                })
                .session(&mut session)
                .await?;
            self.write_outbox(&mut session, announce).await?;
            Ok(true)
        }
        .await)
    }

    async fn backfill_tickets(&self) -> Result<usize, RepoError> {
        // One pass over the orders, once: those with a ticket are skipped by an indexed
        // lookup, the others get one per standing seat; then a marker says it is done (orders
        // bought meanwhile have their tickets from their purchase).
        const DONE: &str = "tickets-backfilled";
        if self.meta.find_one(doc! { "_id": DONE }).await?.is_some() {
            return Ok(0);
        }
        let mut orders = self.orders.find(doc! {}).await?;
        let mut issued = 0;
        while let Some(document) = orders.try_next().await? {
            let order = crate::domain::order::Order::from(document);
            if crate::domain::order::is_block(&order.order_id)
                || self
                    .tickets
                    .find_one(doc! { "orderId": &order.order_id })
                    .await?
                    .is_some()
            {
                continue;
            }
            let now = now_millis();
            let tickets: Vec<TicketDocument> = Ticket::issue(&order)
                .into_iter()
                .filter(|t| !order.cancelled_seat_ids.contains(&t.seat_id))
                .map(|mut t| {
                    // Changed now, so scanners syncing by delta get them.
                    t.changed_at_ms = now;
                    TicketDocument::from(&t)
                })
                .collect();
            if tickets.is_empty() {
                continue;
            }
            issued += tickets.len();
            self.tickets.insert_many(tickets).await?;
        }
        self.meta
            .update_one(
                doc! { "_id": DONE },
                doc! { "$set": { "at": now_millis() } },
            )
            .upsert(true)
            .await?;
        Ok(issued)
    }

    async fn ticket_policy(&self, event_id: &EventId) -> Result<TicketPolicy, RepoError> {
        let Some(stored) = self
            .ticket_policies
            .find_one(doc! { "_id": event_id })
            .await?
        else {
            return Ok(TicketPolicy::default());
        };
        let defaults = TicketPolicy::default();
        let number = |name: &str, default: u32| {
            stored
                .get_i64(name)
                .ok()
                .or_else(|| stored.get_i32(name).ok().map(i64::from))
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(default)
        };
        Ok(TicketPolicy {
            reentry: stored.get_bool("reentry").unwrap_or(defaults.reentry),
            transfers_enabled: stored
                .get_bool("transfersEnabled")
                .unwrap_or(defaults.transfers_enabled),
            transfer_cutoff_hours: number("transferCutoffHours", defaults.transfer_cutoff_hours),
            max_transfers: number("maxTransfers", defaults.max_transfers),
        })
    }

    async fn set_ticket_policy(
        &self,
        event_id: &EventId,
        policy: &TicketPolicy,
    ) -> Result<(), RepoError> {
        self.ticket_policies
            .update_one(
                doc! { "_id": event_id },
                doc! { "$set": {
                    "reentry": policy.reentry,
                    "transfersEnabled": policy.transfers_enabled,
                    "transferCutoffHours": i64::from(policy.transfer_cutoff_hours),
                    "maxTransfers": i64::from(policy.max_transfers),
                } },
            )
            .upsert(true)
            .await?;
        Ok(())
    }
}
