//! Orders, refunds and sold seats on MongoDB, each purchase and cancellation one transaction.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use holdfast_common::docstore::is_duplicate_key;
use mongodb::ClientSession;
use mongodb::bson::{DateTime, Document, doc};
use mongodb::error::TRANSIENT_TRANSACTION_ERROR;

use super::records::{OrderDocument, RefundDocument, sold_seat_id};
use super::{MongoOrders, TRANSACTION_ATTEMPTS};
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::now_millis;
use crate::domain::order::{Order, Refund, is_block};
use crate::store::{
    CancelOutcome, NewCancellation, NewPurchase, OrderStore, PurchaseOutcome, RepoError, SoldSeats,
};

/// What went wrong inside the transaction body.
enum Abort {
    Outcome(PurchaseOutcome),
    Error(mongodb::error::Error),
}

impl From<mongodb::error::Error> for Abort {
    fn from(error: mongodb::error::Error) -> Self {
        Self::Error(error)
    }
}

impl MongoOrders {
    /// The writes of one purchase, inside the session's transaction.
    async fn write_purchase(
        &self,
        session: &mut ClientSession,
        p: &NewPurchase,
    ) -> Result<(), Abort> {
        let order = &p.order;
        for seat in &order.seat_ids {
            let seat_doc = doc! {
                "_id": sold_seat_id(&order.event_id, seat),
                "eventId": &order.event_id,
                "seatId": seat,
                "orderId": &order.order_id,
            };
            match self
                .sold_seats
                .insert_one(seat_doc)
                .session(&mut *session)
                .await
            {
                Ok(_) => {}
                Err(e) if is_duplicate_key(&e) => {
                    return Err(Abort::Outcome(PurchaseOutcome::SeatsTaken(Vec::new())));
                }
                Err(e) => return Err(e.into()),
            }
        }
        match self
            .orders
            .insert_one(OrderDocument::from(order))
            .session(&mut *session)
            .await
        {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {
                return Err(Abort::Outcome(PurchaseOutcome::IntentUsed));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(idem) = &p.idempotency {
            self.idempotency
                .delete_one(doc! {
                    "userId": &order.user_id,
                    "key": &idem.key,
                    "expiresAt": { "$lte": DateTime::from_millis(now_millis()) },
                })
                .session(&mut *session)
                .await?;
            let record = doc! {
                "userId": &order.user_id,
                "key": &idem.key,
                "requestHash": &idem.request_hash,
                "status": i32::from(idem.status),
                "body": &idem.body,
                "createdAt": idem.created_at_ms,
                "expiresAt": DateTime::from_millis(idem.expires_at_ms),
                "orderId": &order.order_id,
            };
            match self
                .idempotency
                .insert_one(record)
                .session(&mut *session)
                .await
            {
                Ok(_) => {}
                Err(e) if is_duplicate_key(&e) => {
                    return Err(Abort::Outcome(PurchaseOutcome::KeyUsed));
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.insert_tickets(session, &p.tickets).await?;
        self.write_outbox(session, &p.outbox).await?;
        Ok(())
    }

    /// The writes of one cancellation, inside the session's transaction.
    async fn write_cancellation(
        &self,
        session: &mut ClientSession,
        p: &NewCancellation,
    ) -> Result<CancelOutcome, mongodb::error::Error> {
        let order = &p.order;
        let read_revision = order.revision - 1;
        // Orders stored before cancellations existed have no revision: they are at 0.
        let at_revision = if read_revision == 0 {
            doc! { "$or": [{ "revision": 0_i64 }, { "revision": { "$exists": false } }] }
        } else {
            doc! { "revision": read_revision }
        };
        let mut filter = doc! { "_id": &order.order_id };
        filter.extend(at_revision);
        let updated = self
            .orders
            .update_one(
                filter,
                doc! { "$set": {
                    "status": order.status.as_str(),
                    "cancelledSeatIds": &order.cancelled_seat_ids,
                    "cancelledAt": &order.cancelled_at_ms,
                    "refundedMinor": order.refunded_minor,
                    "revision": order.revision,
                } },
            )
            .session(&mut *session)
            .await?;
        if updated.matched_count == 0 {
            return Ok(CancelOutcome::Stale);
        }
        let released: Vec<String> = p
            .released
            .iter()
            .map(|seat| sold_seat_id(&order.event_id, seat))
            .collect();
        self.sold_seats
            .delete_many(doc! { "_id": { "$in": released }, "orderId": &order.order_id })
            .session(&mut *session)
            .await?;
        self.revoke_tickets(session, &order.order_id, &p.released)
            .await?;
        self.refunds
            .insert_one(RefundDocument::from(&p.refund))
            .session(&mut *session)
            .await?;
        self.write_outbox(session, &p.outbox).await?;
        Ok(CancelOutcome::Committed)
    }

    async fn refunds_matching(&self, filter: Document) -> Result<Vec<Refund>, RepoError> {
        let documents: Vec<RefundDocument> = self
            .refunds
            .find(filter)
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(Refund::from).collect())
    }
}

#[async_trait]
impl OrderStore for MongoOrders {
    /// One insert per seat; when one is sold already, the block's own records written so far
    /// are deleted again (the block id is new, so nobody else's records match).
    async fn block_seats(
        &self,
        event_id: &EventId,
        seat_ids: &[SeatId],
        block: &OrderId,
    ) -> Result<bool, RepoError> {
        for seat in seat_ids {
            let record = doc! {
                "_id": sold_seat_id(event_id, seat),
                "eventId": event_id,
                "seatId": seat,
                "orderId": block,
            };
            match self.sold_seats.insert_one(record).await {
                Ok(_) => {}
                Err(e) if is_duplicate_key(&e) => {
                    self.sold_seats
                        .delete_many(doc! { "eventId": event_id, "orderId": block })
                        .await?;
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    async fn unblock_seats(
        &self,
        event_id: &EventId,
        seat_ids: &[SeatId],
    ) -> Result<Vec<(SeatId, OrderId)>, RepoError> {
        let mut freed = Vec::new();
        for seat in seat_ids {
            let filter = doc! { "_id": sold_seat_id(event_id, seat) };
            let Some(record) = self.sold_seats.find_one(filter.clone()).await? else {
                continue;
            };
            let Ok(order) = record.get_str("orderId") else {
                continue;
            };
            if !is_block(order) {
                continue;
            }
            let deleted = self
                .sold_seats
                .delete_one(doc! { "_id": sold_seat_id(event_id, seat), "orderId": order })
                .await?;
            if deleted.deleted_count > 0 {
                freed.push((seat.clone(), OrderId::from_stored(order.to_string())));
            }
        }
        Ok(freed)
    }

    async fn sold_seats(&self, event_id: &EventId) -> Result<SoldSeats, RepoError> {
        let documents: Vec<Document> = self
            .sold_seats
            .find(doc! { "eventId": event_id })
            .projection(doc! { "seatId": 1, "orderId": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(documents
            .iter()
            .filter_map(|d| {
                let seat = d.get_str("seatId").ok()?;
                let order = d.get_str("orderId").ok()?;
                Some((
                    SeatId::from_stored(seat.to_string()),
                    OrderId::from_stored(order.to_string()),
                ))
            })
            .collect())
    }

    async fn purchase(&self, purchase: &NewPurchase) -> Result<PurchaseOutcome, RepoError> {
        let mut session = self.client.start_session().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = |e: &mongodb::error::Error| {
                e.contains_label(TRANSIENT_TRANSACTION_ERROR) && attempt < TRANSACTION_ATTEMPTS
            };
            session.start_transaction().await?;
            match self.write_purchase(&mut session, purchase).await {
                Ok(()) => match Self::commit(&mut session).await {
                    Ok(()) => return Ok(PurchaseOutcome::Committed),
                    Err(e) if retry(&e) => super::back_off(attempt).await,
                    Err(e) => return Err(e.into()),
                },
                Err(Abort::Error(e)) if retry(&e) => {
                    let _ = session.abort_transaction().await;
                    super::back_off(attempt).await;
                }
                Err(Abort::Error(e)) => {
                    let _ = session.abort_transaction().await;
                    return Err(e.into());
                }
                Err(Abort::Outcome(outcome)) => {
                    let _ = session.abort_transaction().await;
                    if let PurchaseOutcome::SeatsTaken(_) = outcome {
                        let sold = self.sold_seats(&purchase.order.event_id).await?;
                        let taken = purchase
                            .order
                            .seat_ids
                            .iter()
                            .filter(|s| sold.contains_key(*s))
                            .cloned()
                            .collect();
                        return Ok(PurchaseOutcome::SeatsTaken(taken));
                    }
                    return Ok(outcome);
                }
            }
        }
    }

    async fn orders_of(&self, user_id: &str) -> Result<Vec<Order>, RepoError> {
        let documents: Vec<OrderDocument> = self
            .orders
            .find(doc! { "userId": user_id })
            .sort(doc! { "createdAt": -1, "_id": -1 })
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(Order::from).collect())
    }

    async fn order(&self, order_id: &OrderId) -> Result<Option<Order>, RepoError> {
        Ok(self
            .orders
            .find_one(doc! { "_id": order_id })
            .await?
            .map(Order::from))
    }

    async fn cancel(&self, cancellation: &NewCancellation) -> Result<CancelOutcome, RepoError> {
        // A stale cancellation wrote nothing: its commit commits nothing.
        in_transaction!(self, |session| self
            .write_cancellation(&mut session, cancellation)
            .await)
    }

    async fn refunds_of(&self, order_id: &OrderId) -> Result<Vec<Refund>, RepoError> {
        self.refunds_matching(doc! { "orderId": order_id }).await
    }

    async fn orders_of_event(&self, event_id: &EventId) -> Result<Vec<Order>, RepoError> {
        let documents: Vec<OrderDocument> = self
            .orders
            .find(doc! { "eventId": event_id })
            .sort(doc! { "createdAt": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(Order::from).collect())
    }

    async fn refunds_of_event(&self, event_id: &EventId) -> Result<Vec<Refund>, RepoError> {
        self.refunds_matching(doc! { "eventId": event_id }).await
    }
}
