//! The MongoDB adapter of [`OrderRepository`].
//!
//! A purchase runs in a multi-document transaction (a replica set is required), retried as the
//! driver documents: the whole transaction on `TransientTransactionError`, the commit alone on
//! `UnknownTransactionCommitResult` — each a bounded number of times, then the error is
//! answered. Seats sold are documents keyed by `<eventId>/<seatId>`, so the unique `_id` is what
//! refuses a second sale. Idempotency records carry `expiresAt` (a date) under a TTL index; the
//! purchase also deletes an expired record of its key itself, since the TTL monitor runs only
//! once a minute.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use holdfast_common::docstore::{MongoDb, is_duplicate_key};
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::error::{TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use mongodb::options::ReturnDocument;
use mongodb::{Client, ClientSession, Collection};
use serde::{Deserialize, Serialize};

use super::{
    CancelOutcome, IdempotentResponse, NewCancellation, NewPurchase, Offer, Order, OrderRepository,
    OrderStatus, OutboxMessage, Place, PurchaseOutcome, Refund, RepoError, SoldSeats,
    WaitlistEntry, WaitlistSummary, line,
};
use crate::domain::now_millis;

/// Runs `$body` — an expression using the session `$session` that answers
/// `Result<T, mongodb::error::Error>` — in a transaction, retried as the module's doc says;
/// answers `Result<T, RepoError>`.
macro_rules! in_transaction {
    ($self:ident, |$session:ident| $body:expr) => {{
        let mut $session = $self.client.start_session().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = |e: &mongodb::error::Error| {
                e.contains_label(TRANSIENT_TRANSACTION_ERROR) && attempt < TRANSACTION_ATTEMPTS
            };
            $session.start_transaction().await?;
            match $body {
                Ok(value) => match Self::commit(&mut $session).await {
                    Ok(()) => break Ok(value),
                    Err(e) if retry(&e) => continue,
                    Err(e) => break Err(RepoError::from(e)),
                },
                Err(e) => {
                    let _ = $session.abort_transaction().await;
                    if retry(&e) {
                        continue;
                    }
                    break Err(RepoError::from(e));
                }
            }
        }
    }};
}
/// How often a purchase transaction is run again after a transient error (write conflicts
/// between concurrent buyers of one seat end here), and a commit retried after an unknown
/// result, before the error is answered.
const TRANSACTION_ATTEMPTS: u32 = 10;
const COMMIT_ATTEMPTS: u32 = 5;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderDocument {
    #[serde(rename = "_id")]
    order_id: String,
    user_id: String,
    event_id: String,
    seat_ids: Vec<String>,
    amount_minor: i64,
    currency: String,
    payment_intent_id: String,
    status: OrderStatus,
    created_at: i64,
    // Written by cancellations; orders stored before them have none.
    #[serde(default)]
    cancelled_seat_ids: Vec<String>,
    #[serde(default)]
    cancelled_at: Vec<i64>,
    #[serde(default)]
    refunded_minor: i64,
    #[serde(default)]
    revision: i64,
    #[serde(default)]
    email: Option<String>,
}

impl From<&Order> for OrderDocument {
    fn from(o: &Order) -> Self {
        Self {
            order_id: o.order_id.clone(),
            user_id: o.user_id.clone(),
            event_id: o.event_id.clone(),
            seat_ids: o.seat_ids.clone(),
            amount_minor: o.amount_minor,
            currency: o.currency.clone(),
            payment_intent_id: o.payment_intent_id.clone(),
            status: o.status,
            created_at: o.created_at_ms,
            cancelled_seat_ids: o.cancelled_seat_ids.clone(),
            cancelled_at: o.cancelled_at_ms.clone(),
            refunded_minor: o.refunded_minor,
            revision: o.revision,
            email: o.email.clone(),
        }
    }
}

impl From<OrderDocument> for Order {
    fn from(d: OrderDocument) -> Self {
        Self {
            order_id: d.order_id,
            user_id: d.user_id,
            event_id: d.event_id,
            seat_ids: d.seat_ids,
            amount_minor: d.amount_minor,
            currency: d.currency,
            payment_intent_id: d.payment_intent_id,
            status: d.status,
            created_at_ms: d.created_at,
            cancelled_seat_ids: d.cancelled_seat_ids,
            cancelled_at_ms: d.cancelled_at,
            refunded_minor: d.refunded_minor,
            revision: d.revision,
            email: d.email,
        }
    }
}

pub struct MongoOrders {
    client: Client,
    orders: Collection<OrderDocument>,
    idempotency: Collection<Document>,
    sold_seats: Collection<Document>,
    outbox: Collection<Document>,
    refunds: Collection<RefundDocument>,
    waitlist: Collection<WaitlistDocument>,
    /// Per event: the next sequence number, the entries and the seats wanted.
    waitlist_lines: Collection<Document>,
    /// How many entries each block of sequence numbers holds (see `store::line`).
    waitlist_blocks: Collection<Document>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefundDocument {
    #[serde(rename = "_id")]
    refund_id: String,
    order_id: String,
    event_id: String,
    user_id: String,
    payment_intent_id: Option<String>,
    seat_ids: Vec<String>,
    amount_minor: i64,
    currency: String,
    cancelled_by: String,
    created_at: i64,
}

impl From<&Refund> for RefundDocument {
    fn from(r: &Refund) -> Self {
        Self {
            refund_id: r.refund_id.clone(),
            order_id: r.order_id.clone(),
            event_id: r.event_id.clone(),
            user_id: r.user_id.clone(),
            payment_intent_id: r.payment_intent_id.clone(),
            seat_ids: r.seat_ids.clone(),
            amount_minor: r.amount_minor,
            currency: r.currency.clone(),
            cancelled_by: r.cancelled_by.clone(),
            created_at: r.created_at_ms,
        }
    }
}

impl From<RefundDocument> for Refund {
    fn from(d: RefundDocument) -> Self {
        Self {
            refund_id: d.refund_id,
            order_id: d.order_id,
            event_id: d.event_id,
            user_id: d.user_id,
            payment_intent_id: d.payment_intent_id,
            seat_ids: d.seat_ids,
            amount_minor: d.amount_minor,
            currency: d.currency,
            cancelled_by: d.cancelled_by,
            created_at_ms: d.created_at,
        }
    }
}

/// A waitlist entry, keyed `<eventId>/<userId>` so that a user is on an event's list once.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WaitlistDocument {
    #[serde(rename = "_id")]
    id: String,
    event_id: String,
    user_id: String,
    seats: i64,
    joined_at: i64,
    #[serde(default)]
    email: Option<String>,
    offer_hold_id: Option<String>,
    offer_until: Option<i64>,
    /// Its place in the line (see `store::line`); entries stored before it was kept have 0.
    #[serde(default)]
    seq: i64,
}

impl From<WaitlistDocument> for WaitlistEntry {
    fn from(d: WaitlistDocument) -> Self {
        Self {
            event_id: d.event_id,
            user_id: d.user_id,
            seq: u64::try_from(d.seq).unwrap_or(0),
            seats: usize::try_from(d.seats).unwrap_or(0),
            joined_at_ms: d.joined_at,
            email: d.email,
            offer: d
                .offer_hold_id
                .zip(d.offer_until)
                .map(|(hold_id, until_ms)| Offer { hold_id, until_ms }),
        }
    }
}

fn waitlist_id(event_id: &str, user_id: &str) -> String {
    format!("{event_id}/{user_id}")
}

impl MongoOrders {
    pub fn new(db: &MongoDb) -> Self {
        let database = db.database();
        Self {
            client: db.client().clone(),
            orders: database.collection("orders"),
            idempotency: database.collection("idempotency"),
            sold_seats: database.collection("sold_seats"),
            outbox: database.collection("outbox"),
            refunds: database.collection("refunds"),
            waitlist: database.collection("waitlist"),
            waitlist_lines: database.collection("waitlist_lines"),
            waitlist_blocks: database.collection("waitlist_blocks"),
        }
    }
}

fn sold_seat_id(event_id: &str, seat_id: &str) -> String {
    format!("{event_id}/{seat_id}")
}

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
        self.write_outbox(session, &p.outbox).await?;
        Ok(())
    }

    async fn write_outbox(
        &self,
        session: &mut ClientSession,
        message: &OutboxMessage,
    ) -> Result<(), mongodb::error::Error> {
        let message = doc! {
            "_id": &message.id,
            "routingKey": &message.routing_key,
            "payload": &message.payload,
            "createdAt": now_millis(),
            "sentAt": Bson::Null,
        };
        self.outbox
            .insert_one(message)
            .session(&mut *session)
            .await?;
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

    async fn commit(session: &mut ClientSession) -> Result<(), mongodb::error::Error> {
        let mut attempt = 1;
        loop {
            match session.commit_transaction().await {
                Err(e)
                    if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                        && attempt < COMMIT_ATTEMPTS =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl OrderRepository for MongoOrders {
    async fn sold_seats(&self, event_id: &str) -> Result<SoldSeats, RepoError> {
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
                Some((seat.to_string(), order.to_string()))
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
                    Err(e) if retry(&e) => continue,
                    Err(e) => return Err(e.into()),
                },
                Err(Abort::Error(e)) if retry(&e) => {
                    let _ = session.abort_transaction().await;
                    continue;
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

    async fn idempotent_response(
        &self,
        user_id: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<IdempotentResponse>, RepoError> {
        let found = self
            .idempotency
            .find_one(doc! {
                "userId": user_id,
                "key": key,
                "expiresAt": { "$gt": DateTime::from_millis(now_ms) },
            })
            .await?;
        let Some(d) = found else { return Ok(None) };
        let corrupt =
            |field: &str| RepoError::Corrupt(format!("idempotency record without {field}"));
        Ok(Some(IdempotentResponse {
            key: key.to_string(),
            request_hash: d
                .get_str("requestHash")
                .map_err(|_| corrupt("requestHash"))?
                .to_string(),
            status: u16::try_from(d.get_i32("status").map_err(|_| corrupt("status"))?)
                .map_err(|_| corrupt("status"))?,
            body: d.get_str("body").map_err(|_| corrupt("body"))?.to_string(),
            created_at_ms: d.get_i64("createdAt").map_err(|_| corrupt("createdAt"))?,
            expires_at_ms: d
                .get_datetime("expiresAt")
                .map_err(|_| corrupt("expiresAt"))?
                .timestamp_millis(),
        }))
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

    async fn order(&self, order_id: &str) -> Result<Option<Order>, RepoError> {
        Ok(self
            .orders
            .find_one(doc! { "_id": order_id })
            .await?
            .map(Order::from))
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, RepoError> {
        let documents: Vec<Document> = self
            .outbox
            .find(doc! { "sentAt": Bson::Null })
            .sort(doc! { "createdAt": 1 })
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        documents
            .iter()
            .map(|d| {
                let field = |name: &str| {
                    d.get_str(name)
                        .map(str::to_string)
                        .map_err(|_| RepoError::Corrupt(format!("outbox message without {name}")))
                };
                Ok(OutboxMessage {
                    id: field("_id")?,
                    routing_key: field("routingKey")?,
                    payload: field("payload")?,
                })
            })
            .collect()
    }

    async fn mark_sent(&self, id: &str) -> Result<(), RepoError> {
        self.outbox
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "sentAt": now_millis() } },
            )
            .await?;
        Ok(())
    }

    async fn prune(
        &self,
        sent_before_ms: i64,
        _now_ms: i64,
        limit: usize,
    ) -> Result<usize, RepoError> {
        // Expired idempotency records go by their TTL index; published outbox messages here.
        let limit = as_i64(u64::try_from(limit).unwrap_or(u64::MAX));
        let done: Vec<Document> = self
            .outbox
            .find(doc! { "sentAt": { "$lt": sent_before_ms } })
            .projection(doc! { "_id": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        if done.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&Bson> = done.iter().filter_map(|d| d.get("_id")).collect();
        let deleted = self
            .outbox
            .delete_many(doc! { "_id": { "$in": ids } })
            .await?;
        Ok(usize::try_from(deleted.deleted_count).unwrap_or(usize::MAX))
    }

    async fn cancel(&self, cancellation: &NewCancellation) -> Result<CancelOutcome, RepoError> {
        // A stale cancellation wrote nothing: its commit commits nothing.
        in_transaction!(self, |session| self
            .write_cancellation(&mut session, cancellation)
            .await)
    }

    async fn refunds_of(&self, order_id: &str) -> Result<Vec<Refund>, RepoError> {
        self.refunds_matching(doc! { "orderId": order_id }).await
    }

    async fn orders_of_event(&self, event_id: &str) -> Result<Vec<Order>, RepoError> {
        let documents: Vec<OrderDocument> = self
            .orders
            .find(doc! { "eventId": event_id })
            .sort(doc! { "createdAt": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(Order::from).collect())
    }

    async fn refunds_of_event(&self, event_id: &str) -> Result<Vec<Refund>, RepoError> {
        self.refunds_matching(doc! { "eventId": event_id }).await
    }

    async fn join_waitlist(&self, entry: &WaitlistEntry) -> Result<bool, RepoError> {
        let id = waitlist_id(&entry.event_id, &entry.user_id);
        let on_it = || self.waitlist.find_one(doc! { "_id": &id });
        if on_it().await?.is_some() {
            return Ok(false);
        }
        let seats = i64::try_from(entry.seats).unwrap_or(i64::MAX);
        let joined = in_transaction!(self, |session| {
            async {
                let line = self
                    .waitlist_lines
                    .find_one_and_update(
                        doc! { "_id": &entry.event_id },
                        doc! { "$inc": { "nextSeq": 1_i64, "entries": 1_i64, "seats": seats } },
                    )
                    .upsert(true)
                    .return_document(ReturnDocument::After)
                    .session(&mut session)
                    .await?;
                let seq = line
                    .and_then(|l| l.get_i64("nextSeq").ok())
                    .unwrap_or_default();
                let document = WaitlistDocument {
                    id: id.clone(),
                    event_id: entry.event_id.clone(),
                    user_id: entry.user_id.clone(),
                    seats,
                    joined_at: entry.joined_at_ms,
                    email: entry.email.clone(),
                    offer_hold_id: None,
                    offer_until: None,
                    seq,
                };
                self.waitlist
                    .insert_one(document)
                    .session(&mut session)
                    .await?;
                self.count_in_blocks(&mut session, &entry.event_id, seq, 1)
                    .await?;
                Ok(true)
            }
            .await
        });
        match joined {
            // The same user joining twice at once: the other join won.
            Err(_) if on_it().await?.is_some() => Ok(false),
            joined => joined,
        }
    }

    async fn waitlist_place(
        &self,
        event_id: &str,
        user_id: &str,
    ) -> Result<Option<Place>, RepoError> {
        let Some(entry) = self
            .waitlist
            .find_one(doc! { "_id": waitlist_id(event_id, user_id) })
            .await?
            .map(WaitlistEntry::from)
        else {
            return Ok(None);
        };
        let mut before = 0_i64;
        let mut blocks = Vec::new();
        for (level, first, end) in line::ranges_before(entry.seq) {
            let (first, end) = (as_i64(first), as_i64(end));
            if level == 0 {
                let filter = doc! { "eventId": event_id, "seq": { "$gte": first, "$lt": end } };
                before += as_i64(self.waitlist.count_documents(filter).await?);
            } else {
                blocks.push(doc! { "level": level, "block": { "$gte": first, "$lt": end } });
            }
        }
        if !blocks.is_empty() {
            let counts: Vec<Document> = self
                .waitlist_blocks
                .find(doc! { "eventId": event_id, "$or": blocks })
                .projection(doc! { "entries": 1 })
                .await?
                .try_collect()
                .await?;
            before += counts.iter().map(entries_of).sum::<i64>();
        }
        let length = self
            .waitlist_lines
            .find_one(doc! { "_id": event_id })
            .await?
            .as_ref()
            .map_or(0, entries_of);
        Ok(Some(Place {
            entry,
            position: usize::try_from(before + 1).unwrap_or(1),
            length: usize::try_from(length).unwrap_or(0),
        }))
    }

    async fn leave_waitlist(
        &self,
        event_id: &str,
        user_id: &str,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        let filter = doc! { "_id": waitlist_id(event_id, user_id) };
        self.remove_from_waitlist(filter, announce).await
    }

    async fn next_in_line(
        &self,
        event_id: &str,
        max_seats: usize,
        skip: &[String],
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let mut entries = Vec::new();
        let each = as_i64(u64::try_from(limit + skip.len()).unwrap_or(u64::MAX));
        // One indexed read per seats wanted: those who want more than is free are never
        // stepped over one by one.
        for seats in 1..=max_seats {
            let filter = doc! {
                "eventId": event_id,
                "seats": as_i64(u64::try_from(seats).unwrap_or(u64::MAX)),
                "offerHoldId": Bson::Null,
            };
            entries.extend(
                self.entries_matching(filter, doc! { "seq": 1 }, each)
                    .await?,
            );
        }
        Ok(super::first_in_line(entries, skip, limit))
    }

    async fn oversized_entries(
        &self,
        event_id: &str,
        max_seats: usize,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let max_seats = as_i64(u64::try_from(max_seats).unwrap_or(u64::MAX));
        let filter = doc! {
            "eventId": event_id,
            "seats": { "$gt": max_seats },
            "offerHoldId": Bson::Null,
        };
        let limit = as_i64(u64::try_from(limit).unwrap_or(u64::MAX));
        self.entries_matching(filter, doc! { "seats": 1, "seq": 1 }, limit)
            .await
    }

    async fn offers_ended_before(
        &self,
        event_id: &str,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let filter = doc! { "eventId": event_id, "offerUntil": { "$lt": before_ms } };
        let limit = as_i64(u64::try_from(limit).unwrap_or(u64::MAX));
        self.entries_matching(filter, doc! { "offerUntil": 1 }, limit)
            .await
    }

    async fn has_offers(&self, event_id: &str) -> Result<bool, RepoError> {
        Ok(self.waitlist.find_one(offers_of(event_id)).await?.is_some())
    }

    async fn waitlist_summary(&self, event_id: &str) -> Result<WaitlistSummary, RepoError> {
        let line = self
            .waitlist_lines
            .find_one(doc! { "_id": event_id })
            .await?;
        let offers = self.waitlist.count_documents(offers_of(event_id)).await?;
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        Ok(WaitlistSummary {
            entries: count(line.as_ref().map_or(0, entries_of)),
            seats: count(
                line.as_ref()
                    .and_then(|l| l.get_i64("seats").ok())
                    .unwrap_or(0),
            ),
            offers: usize::try_from(offers).unwrap_or(0),
        })
    }

    async fn record_offer(
        &self,
        event_id: &str,
        user_id: &str,
        offer: &Offer,
        announce: Option<&OutboxMessage>,
    ) -> Result<bool, RepoError> {
        in_transaction!(self, |session| {
            let updated = self
                .waitlist
                .update_one(
                    doc! { "_id": waitlist_id(event_id, user_id), "offerHoldId": Bson::Null },
                    doc! { "$set": { "offerHoldId": &offer.hold_id, "offerUntil": offer.until_ms } },
                )
                .session(&mut session)
                .await;
            match (updated, announce) {
                (Ok(updated), Some(message)) if updated.modified_count == 1 => self
                    .write_outbox(&mut session, message)
                    .await
                    .map(|()| true),
                (Ok(updated), _) => Ok(updated.modified_count == 1),
                (Err(e), _) => Err(e),
            }
        })
    }

    async fn end_offer(
        &self,
        event_id: &str,
        hold_id: &str,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        let filter = doc! { "eventId": event_id, "offerHoldId": hold_id };
        self.remove_from_waitlist(filter, announce).await
    }
}

impl MongoOrders {
    /// Adds `by` (1 or -1) to the count of every block holding `seq`, inside the session's
    /// transaction; blocks left empty go.
    async fn count_in_blocks(
        &self,
        session: &mut ClientSession,
        event_id: &str,
        seq: i64,
        by: i64,
    ) -> Result<(), mongodb::error::Error> {
        let seq = u64::try_from(seq).unwrap_or(0);
        for (level, block) in line::blocks_of(seq) {
            let block = as_i64(block);
            self.waitlist_blocks
                .update_one(
                    doc! { "_id": format!("{event_id}/{level}/{block}") },
                    doc! {
                        "$inc": { "entries": by },
                        "$setOnInsert": { "eventId": event_id, "level": level, "block": block },
                    },
                )
                .upsert(by > 0)
                .session(&mut *session)
                .await?;
        }
        if by < 0 {
            self.waitlist_blocks
                .delete_many(doc! { "eventId": event_id, "entries": { "$lte": 0_i64 } })
                .session(&mut *session)
                .await?;
        }
        Ok(())
    }

    /// Deletes the entry matching `filter`, takes it out of the line's counts and writes
    /// `announce`, in one transaction; the entry as it was.
    async fn remove_from_waitlist(
        &self,
        filter: Document,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        in_transaction!(self, |session| {
            async {
                let Some(entry) = self
                    .waitlist
                    .find_one_and_delete(filter.clone())
                    .session(&mut session)
                    .await?
                else {
                    return Ok(None);
                };
                self.waitlist_lines
                    .update_one(
                        doc! { "_id": &entry.event_id },
                        doc! { "$inc": { "entries": -1_i64, "seats": -entry.seats } },
                    )
                    .session(&mut session)
                    .await?;
                self.count_in_blocks(&mut session, &entry.event_id, entry.seq, -1)
                    .await?;
                if let Some(message) = announce {
                    self.write_outbox(&mut session, message).await?;
                }
                Ok(Some(WaitlistEntry::from(entry)))
            }
            .await
        })
    }

    /// Entries matching `filter` in `order`, at most `limit`.
    async fn entries_matching(
        &self,
        filter: Document,
        order: Document,
        limit: i64,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let documents: Vec<WaitlistDocument> = self
            .waitlist
            .find(filter)
            .sort(order)
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(WaitlistEntry::from).collect())
    }
}

/// The event's entries with an offer standing.
fn offers_of(event_id: &str) -> Document {
    doc! { "eventId": event_id, "offerHoldId": { "$type": "string" } }
}

/// The `entries` count of a line or block document.
fn entries_of(document: &Document) -> i64 {
    document.get_i64("entries").unwrap_or(0)
}

/// A count or sequence number as MongoDB stores it.
fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
