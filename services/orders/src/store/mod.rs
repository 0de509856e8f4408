//! Where orders are kept: one port per capability — [`OrderStore`] (orders, refunds and sold
//! seats), [`TicketStore`], [`CheckinStore`], [`WaitlistStore`], [`OutboxStore`] and [`IdempotencyStore`] — each
//! with a SQLite and a MongoDB adapter (`sqlite/`, `mongo/`, a file per capability).
//!
//! A purchase is ONE transaction: a sold-seat record per seat under a unique (event, seat) key,
//! the order (its payment intent id unique), its tickets, its idempotency
//! record and an outbox message `order.purchased`. A cancellation revokes its seats' tickets in
//! its own transaction. Either all of it is stored or none of it; the unique keys, not the hold
//! keys, are what make a seat sell at most once. Writes that span capabilities (a purchase, a
//! cancellation, a waitlist change with its announcement) stay one transaction inside the
//! adapter: the records they carry ([`NewPurchase`], [`OutboxMessage`]) are defined here.

pub mod admission;
pub mod board;
pub mod holds;
pub mod line;
mod mongo;
pub mod payments;
mod schema;
mod sqlite;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use holdfast_common::docstore::{Database, StoreError};

pub use self::mongo::MongoOrders;
pub use self::schema::SCHEMA;
pub use self::sqlite::SqliteOrders;
use crate::domain::checkin::{Device, Passage, PassageOutcome};
use crate::domain::ids::{EventId, HoldId, OrderId, SeatId};
use crate::domain::order::{Order, Refund};
use crate::domain::ticket::{Ticket, TicketPolicy, TicketTransfer};
use crate::domain::waitlist::{Offer, Place, WaitlistEntry, WaitlistSummary};

/// The store's failures; a record that does not decode is `Corrupt`.
pub type RepoError = StoreError;

/// Everything one cancellation writes: the order as it becomes (its revision already bumped),
/// the seats it releases, the refund and the `order.cancelled` message.
#[derive(Debug, Clone)]
pub struct NewCancellation {
    pub order: Order,
    pub released: Vec<SeatId>,
    pub refund: Refund,
    pub outbox: OutboxMessage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    Committed,
    /// Nothing was written: the order changed since it was read (another cancellation); read
    /// it again.
    Stale,
}

/// The first answer to a purchase made with an Idempotency-Key, replayed to retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    pub key: String,
    /// SHA-256 of the request body, to refuse the same key with another body.
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    pub created_at_ms: i64,
    /// After this instant the key is forgotten: lookups miss it and a new purchase may reuse
    /// it (the purchase transaction clears the expired record first).
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Also the bus message id.
    pub id: String,
    pub routing_key: String,
    /// JSON of the whole bus message.
    pub payload: String,
}

/// Everything one purchase writes.
#[derive(Debug, Clone)]
pub struct NewPurchase {
    pub order: Order,
    /// One per seat ([`Ticket::issue`]); made before the purchase so that its announcement
    /// can carry their passes.
    pub tickets: Vec<Ticket>,
    pub idempotency: Option<IdempotentResponse>,
    pub outbox: OutboxMessage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseOutcome {
    Committed,
    /// Nothing was written: these seats are already sold.
    SeatsTaken(Vec<SeatId>),
    /// Nothing was written: the payment intent already paid for an order.
    IntentUsed,
    /// Nothing was written: this user's Idempotency-Key is already stored and not expired.
    KeyUsed,
}

/// An event's sold seats, each with the order that bought it.
pub type SoldSeats = HashMap<SeatId, OrderId>;

/// Orders, their refunds and the sold seats they hold.
#[async_trait]
pub trait OrderStore: Send + Sync + 'static {
    async fn sold_seats(&self, event_id: &EventId) -> Result<SoldSeats, RepoError>;
    async fn purchase(&self, purchase: &NewPurchase) -> Result<PurchaseOutcome, RepoError>;
    /// The user's orders, newest first.
    async fn orders_of(&self, user_id: &str) -> Result<Vec<Order>, RepoError>;
    async fn order(&self, order_id: &OrderId) -> Result<Option<Order>, RepoError>;
    /// Applies a cancellation in one transaction — the order updated if it is still at the
    /// revision before `cancellation.order.revision`, its released seats' sold records deleted,
    /// the refund and the outbox message written — or nothing.
    async fn cancel(&self, cancellation: &NewCancellation) -> Result<CancelOutcome, RepoError>;
    /// The refunds of an order, oldest first.
    async fn refunds_of(&self, order_id: &OrderId) -> Result<Vec<Refund>, RepoError>;
    /// Every order of an event.
    async fn orders_of_event(&self, event_id: &EventId) -> Result<Vec<Order>, RepoError>;
    /// Every refund of an event.
    async fn refunds_of_event(&self, event_id: &EventId) -> Result<Vec<Refund>, RepoError>;
    /// Records `seat_ids` of the event as kept back by its organizer — sold to the block
    /// `block` (see [`crate::domain::order::is_block`]) — all of them, or none and `false` when
    /// one of them is sold already.
    async fn block_seats(
        &self,
        event_id: &EventId,
        seat_ids: &[SeatId],
        block: &OrderId,
    ) -> Result<bool, RepoError>;
    /// Deletes the block records of those of `seat_ids` that are blocked; answers each seat
    /// freed with the block it belonged to.
    async fn unblock_seats(
        &self,
        event_id: &EventId,
        seat_ids: &[SeatId],
    ) -> Result<Vec<(SeatId, OrderId)>, RepoError>;
}

/// Tickets, written by [`OrderStore::purchase`] and revoked by [`OrderStore::cancel`].
#[async_trait]
pub trait TicketStore: Send + Sync + 'static {
    /// Every ticket of the order, revoked ones included.
    async fn tickets_of_order(&self, order_id: &OrderId) -> Result<Vec<Ticket>, RepoError>;
    async fn ticket(&self, ticket_id: &str) -> Result<Option<Ticket>, RepoError>;
    /// The tickets `user_id` holds (bought or received), revoked ones included.
    async fn tickets_of_holder(&self, user_id: &str) -> Result<Vec<Ticket>, RepoError>;
    /// Gives `user_id` the ticket transferred to `email` (lower-cased) whose claim code hashes
    /// to `claim_hash`, if it waits for one; its id.
    async fn claim_ticket(
        &self,
        claim_hash: &str,
        email: &str,
        user_id: &str,
    ) -> Result<Option<String>, RepoError>;
    /// Reissues the ticket to `transfer.to_email` — a new version and secret, no holder id
    /// until that address's account claims it with the code — if it is still at
    /// `from_version`, valid, never entered and under `max_transfers`; in the same transaction
    /// the transfer is recorded and `announce` written to the outbox. Whether it was.
    async fn transfer(
        &self,
        transfer: &TicketTransfer,
        announce: &OutboxMessage,
    ) -> Result<bool, RepoError>;
    /// Issues the tickets of orders stored before tickets existed (each standing seat of an
    /// order without any ticket); how many. Run at every start; idempotent, and on MongoDB a
    /// pass done once is not done again.
    async fn backfill_tickets(&self) -> Result<usize, RepoError>;
    /// The event's ticket policy (the default until one is set).
    async fn ticket_policy(&self, event_id: &EventId) -> Result<TicketPolicy, RepoError>;
    async fn set_ticket_policy(
        &self,
        event_id: &EventId,
        policy: &TicketPolicy,
    ) -> Result<(), RepoError>;
    /// The event's tickets changed after `after` (by when they changed, then by id), oldest
    /// change first; at most `limit` (an indexed range read).
    async fn tickets_changed(
        &self,
        event_id: &EventId,
        after: &ChangeCursor,
        limit: usize,
    ) -> Result<Vec<Ticket>, RepoError>;
}

/// A place in an event's ticket changes: strictly after the change of `ticket_id` at
/// `changed_at_ms` (an empty `ticket_id`: every change at or after `changed_at_ms`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeCursor {
    pub changed_at_ms: i64,
    pub ticket_id: String,
}

impl ChangeCursor {
    /// Just after `ticket`'s change: where the next page starts.
    pub fn after(ticket: &Ticket) -> Self {
        Self {
            changed_at_ms: ticket.changed_at_ms,
            ticket_id: ticket.ticket_id.clone(),
        }
    }
}

/// Check-in: passages through the door (written on the tickets), scanner devices and the
/// nonces of offline scans already reconciled.
#[async_trait]
pub trait CheckinStore: Send + Sync + 'static {
    /// Records `passage` if the pass scanned is its ticket's current one and the door lets it
    /// through — one conditional write, so two gates at once cannot both let a ticket in —
    /// and answers what happened (see [`crate::domain::checkin`]).
    async fn pass_door(&self, passage: &Passage) -> Result<PassageOutcome, RepoError>;
    /// Each of the batch's passages once per `scanner` and nonce, in order: a nonce seen
    /// before answers what it answered then and changes nothing. Nonces are kept until
    /// `expires_at_ms`.
    async fn pass_door_batch(
        &self,
        scanner: &str,
        passages: &[(String, Passage)],
        expires_at_ms: i64,
    ) -> Result<Vec<PassageOutcome>, RepoError>;
    /// Deletes at most `limit` nonces expired at `now_ms`; how many went (0 where the database
    /// expires them itself).
    async fn prune_scan_nonces(&self, now_ms: i64, limit: usize) -> Result<usize, RepoError>;
    /// Adds the device unless its event has `max_per_event` devices not revoked already.
    async fn add_device(&self, device: &Device, max_per_event: usize) -> Result<bool, RepoError>;
    async fn device(&self, device_id: &str) -> Result<Option<Device>, RepoError>;
    /// The event's devices, oldest first, revoked ones too.
    async fn devices_of(&self, event_id: &EventId) -> Result<Vec<Device>, RepoError>;
    /// Revokes the event's device; whether it was there and not revoked yet.
    async fn revoke_device(&self, event_id: &EventId, device_id: &str) -> Result<bool, RepoError>;
}

/// Replayed answers of purchases made with an Idempotency-Key (written by
/// [`OrderStore::purchase`], in its transaction).
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// The stored answer for `user_id`'s `key`, unless it had expired at `now_ms`.
    async fn idempotent_response(
        &self,
        user_id: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<IdempotentResponse>, RepoError>;
    /// Deletes at most `limit` records expired at `now_ms`; how many went (0 where the
    /// database expires them itself).
    async fn prune_expired(&self, now_ms: i64, limit: usize) -> Result<usize, RepoError>;
}

/// Messages written with the changes they announce, published by [`crate::outbox`].
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Outbox messages not yet published, oldest first.
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, RepoError>;
    /// Claims for one relay up to `limit` messages not yet published and not claimed by
    /// another relay (or whose claim ended before `now_ms`), oldest first, until
    /// `lease_until_ms`: the relays of several replicas share the outbox instead of each
    /// publishing every message. A relay that dies leaves its claims to end.
    async fn claim_outbox(
        &self,
        limit: u32,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Vec<OutboxMessage>, RepoError>;
    /// Ends this relay's claims on the messages `ids` it could not publish (the bus is down),
    /// so the next attempt, its own or another relay's, need not wait for them to run out.
    async fn release_claims(&self, ids: &[String]) -> Result<(), RepoError>;
    async fn mark_sent(&self, id: &str) -> Result<(), RepoError>;
    /// Deletes at most `limit` messages published before `sent_before_ms`; how many went.
    async fn prune_published(&self, sent_before_ms: i64, limit: usize) -> Result<usize, RepoError>;
}

/// The waitlist: one line of entries per event, counted in blocks (see [`line`]).
#[async_trait]
pub trait WaitlistStore: Send + Sync + 'static {
    /// Adds the user to the end of the event's waitlist; `false` (and nothing changes) when
    /// they are on it.
    async fn join_waitlist(&self, entry: &WaitlistEntry) -> Result<bool, RepoError>;
    /// The user's place on the event's waitlist, counted from the line's blocks (see [`line`]):
    /// bounded work whatever the length of the queue.
    async fn waitlist_place(
        &self,
        event_id: &EventId,
        user_id: &str,
    ) -> Result<Option<Place>, RepoError>;
    /// Takes the user off the event's waitlist, with `announce` in the outbox in the same
    /// transaction; the entry as it was, if there was one (nothing is announced otherwise).
    async fn leave_waitlist(
        &self,
        event_id: &EventId,
        user_id: &str,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError>;
    /// The first entries in line without an offer that want 1 to `max_seats` seats, leaving out
    /// the users in `skip`; at most `limit`, in queue order (indexed reads by seats wanted,
    /// never a scan of the queue).
    async fn next_in_line(
        &self,
        event_id: &EventId,
        max_seats: usize,
        skip: &[String],
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError>;
    /// Entries without an offer that want more than `max_seats` seats (the limit was lowered
    /// since they joined); at most `limit`.
    async fn oversized_entries(
        &self,
        event_id: &EventId,
        max_seats: usize,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError>;
    /// Entries whose offer ended before `before_ms`; at most `limit`.
    async fn offers_ended_before(
        &self,
        event_id: &EventId,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError>;
    /// Whether any offer stands on the event.
    async fn has_offers(&self, event_id: &EventId) -> Result<bool, RepoError>;
    /// The event's waitlist in figures (kept with the line, so no read of the queue).
    async fn waitlist_summary(&self, event_id: &EventId) -> Result<WaitlistSummary, RepoError>;
    /// Records `offer` for the user if they are waiting without one, with `announce` in the
    /// outbox in the same transaction; whether it was recorded. This is what makes an offer
    /// happen once, whichever process made it.
    async fn record_offer(
        &self,
        event_id: &EventId,
        user_id: &str,
        offer: &Offer,
        announce: Option<&OutboxMessage>,
    ) -> Result<bool, RepoError>;
    /// Takes the user whose offer is the hold `hold_id` off the waitlist (the offer was bought
    /// or ran out), with `announce` in the outbox in the same transaction; the entry, if it was
    /// there (nothing is announced otherwise).
    async fn end_offer(
        &self,
        event_id: &EventId,
        hold_id: &HoldId,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError>;
}

/// Merges entries read per seats wanted into queue order, without `skip`, at most `limit`.
fn first_in_line(
    mut entries: Vec<WaitlistEntry>,
    skip: &[String],
    limit: usize,
) -> Vec<WaitlistEntry> {
    entries.retain(|e| !skip.contains(&e.user_id));
    entries.sort_by_key(|e| e.seq);
    entries.truncate(limit);
    entries
}

/// The store's capabilities, all served by one adapter over one database.
#[derive(Clone)]
pub struct Stores {
    pub orders: Arc<dyn OrderStore>,
    pub tickets: Arc<dyn TicketStore>,
    pub checkin: Arc<dyn CheckinStore>,
    pub waitlist: Arc<dyn WaitlistStore>,
    pub outbox: Arc<dyn OutboxStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
}

impl Stores {
    /// The adapter for `store`'s kind of database.
    pub fn open(store: &Database) -> Self {
        match store {
            Database::Sqlite(db) => Self::all(Arc::new(SqliteOrders::new(db.clone()))),
            Database::Mongo(db) => Self::all(Arc::new(MongoOrders::new(db))),
        }
    }

    fn all<A>(adapter: Arc<A>) -> Self
    where
        A: OrderStore + TicketStore + CheckinStore + WaitlistStore + OutboxStore + IdempotencyStore,
    {
        Self {
            orders: adapter.clone(),
            tickets: adapter.clone(),
            checkin: adapter.clone(),
            waitlist: adapter.clone(),
            outbox: adapter.clone(),
            idempotency: adapter,
        }
    }
}
