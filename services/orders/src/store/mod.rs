//! Where orders are kept: the [`OrderRepository`] port with a SQLite and a MongoDB adapter.
//!
//! A purchase is ONE transaction: a sold-seat record per seat under a unique (event, seat) key,
//! the order (its payment intent id unique, its idempotency key and first answer with it), and
//! an outbox message `order.purchased`. Either all of it is stored or none of it; the unique keys,
//! not the hold keys, are what make a seat sell at most once.

pub mod board;
pub mod holds;
mod mongo;
pub mod payments;
mod sqlite;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use holdfast_common::docstore::{Database, IndexOrder, IndexSpec, Schema, StoreError};
use serde::{Deserialize, Serialize};

pub use self::mongo::MongoOrders;
pub use self::sqlite::SqliteOrders;

pub const SCHEMA: Schema = Schema {
    sqlite_migrations: &[
        r"
        CREATE TABLE orders (
            order_id          TEXT PRIMARY KEY,
            user_id           TEXT NOT NULL,
            event_id          TEXT NOT NULL,
            seat_ids          TEXT NOT NULL,
            amount_minor      INTEGER NOT NULL,
            currency          TEXT NOT NULL,
            payment_intent_id TEXT NOT NULL UNIQUE,
            status            TEXT NOT NULL,
            created_at        INTEGER NOT NULL,
            idempotency_key   TEXT,
            request_hash      TEXT,
            response_status   INTEGER,
            response_body     TEXT
        );
        CREATE UNIQUE INDEX orders_idempotency ON orders (user_id, idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        CREATE INDEX orders_by_user ON orders (user_id, created_at);
        CREATE TABLE sold_seats (
            event_id TEXT NOT NULL,
            seat_id  TEXT NOT NULL,
            order_id TEXT NOT NULL,
            PRIMARY KEY (event_id, seat_id)
        );
        CREATE TABLE outbox (
            id          TEXT PRIMARY KEY,
            routing_key TEXT NOT NULL,
            payload     TEXT NOT NULL,
            created_at  INTEGER NOT NULL,
            sent_at     INTEGER
        );
        CREATE INDEX outbox_pending ON outbox (created_at) WHERE sent_at IS NULL;
    ",
        r"
        -- Idempotency records get a table of their own (the layout of the MongoDB collection)
        -- with an expiry, so that a key is usable again once it is forgotten. Records kept
        -- so far expire a day (the default IDEMPOTENCY_TTL_SECONDS) after their order.
        CREATE TABLE idempotency (
            user_id      TEXT NOT NULL,
            key          TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            status       INTEGER NOT NULL,
            body         TEXT NOT NULL,
            order_id     TEXT NOT NULL,
            created_at   INTEGER NOT NULL,
            expires_at   INTEGER NOT NULL,
            PRIMARY KEY (user_id, key)
        );
        INSERT INTO idempotency
            SELECT user_id, idempotency_key, request_hash, response_status, response_body,
                   order_id, created_at, created_at + 86400000
            FROM orders WHERE idempotency_key IS NOT NULL;
        DROP INDEX orders_idempotency;
        ALTER TABLE orders DROP COLUMN idempotency_key;
        ALTER TABLE orders DROP COLUMN request_hash;
        ALTER TABLE orders DROP COLUMN response_status;
        ALTER TABLE orders DROP COLUMN response_body;
    ",
        r"
        -- Cancellations: the seats given back so far, what was refunded, and a revision that
        -- each cancellation bumps (two cancellations of one order cannot both apply). Refunds
        -- are rows of their own; the waitlist is one row per user and event.
        ALTER TABLE orders ADD COLUMN cancelled_seat_ids TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE orders ADD COLUMN refunded_minor INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE orders ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE orders ADD COLUMN email TEXT;
        CREATE INDEX orders_by_event ON orders (event_id, created_at);
        CREATE TABLE refunds (
            refund_id         TEXT PRIMARY KEY,
            order_id          TEXT NOT NULL,
            event_id          TEXT NOT NULL,
            user_id           TEXT NOT NULL,
            payment_intent_id TEXT,
            seat_ids          TEXT NOT NULL,
            amount_minor      INTEGER NOT NULL,
            currency          TEXT NOT NULL,
            cancelled_by      TEXT NOT NULL,
            created_at        INTEGER NOT NULL
        );
        CREATE INDEX refunds_by_order ON refunds (order_id, created_at);
        CREATE INDEX refunds_by_event ON refunds (event_id);
        CREATE TABLE waitlist (
            event_id       TEXT NOT NULL,
            user_id        TEXT NOT NULL,
            seats          INTEGER NOT NULL,
            joined_at      INTEGER NOT NULL,
            email          TEXT,
            offer_hold_id  TEXT,
            offer_until    INTEGER,
            PRIMARY KEY (event_id, user_id)
        );
        CREATE INDEX waitlist_queue ON waitlist (event_id, joined_at, user_id);
    ",
        r"
        -- When each cancelled seat was given back, index for index with cancelled_seat_ids;
        -- for cancellations stored before, taken from their refunds.
        ALTER TABLE orders ADD COLUMN cancelled_at TEXT NOT NULL DEFAULT '[]';
        UPDATE orders SET cancelled_at = (
            SELECT json_group_array(
                (SELECT r.created_at FROM refunds r, json_each(r.seat_ids) s
                 WHERE r.order_id = orders.order_id AND s.value = c.value
                 ORDER BY r.created_at DESC LIMIT 1))
            FROM json_each(orders.cancelled_seat_ids) c
        )
        WHERE cancelled_seat_ids <> '[]';
    ",
    ],
    mongo_indexes: &[
        IndexSpec {
            collection: "orders",
            name: "orders_unique_intent",
            keys: &[("paymentIntentId", IndexOrder::Ascending)],
            unique: true,
        },
        IndexSpec {
            collection: "orders",
            name: "orders_by_user",
            keys: &[
                ("userId", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Descending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "idempotency",
            name: "idempotency_unique_key",
            keys: &[
                ("userId", IndexOrder::Ascending),
                ("key", IndexOrder::Ascending),
            ],
            unique: true,
        },
        IndexSpec {
            collection: "idempotency",
            name: "idempotency_expiry",
            keys: &[("expiresAt", IndexOrder::ExpiresAt)],
            unique: false,
        },
        IndexSpec {
            collection: "sold_seats",
            name: "sold_seats_unique_seat",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("seatId", IndexOrder::Ascending),
            ],
            unique: true,
        },
        IndexSpec {
            collection: "orders",
            name: "orders_by_event",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "refunds",
            name: "refunds_by_order",
            keys: &[
                ("orderId", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "refunds",
            name: "refunds_by_event",
            keys: &[("eventId", IndexOrder::Ascending)],
            unique: false,
        },
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_one_entry_per_user",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("userId", IndexOrder::Ascending),
            ],
            unique: true,
        },
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_queue",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("joinedAt", IndexOrder::Ascending),
                ("userId", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "outbox",
            name: "outbox_pending",
            keys: &[
                ("sentAt", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Ascending),
            ],
            unique: false,
        },
    ],
};

/// The store's failures; a record that does not decode is `Corrupt`.
pub type RepoError = StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: String,
    pub user_id: String,
    pub event_id: String,
    pub seat_ids: Vec<String>,
    pub amount_minor: i64,
    pub currency: String,
    /// The intent that paid; for free seats [`Order::free_payment_id`], which keeps the
    /// store's "one order per intent" key simple.
    pub payment_intent_id: String,
    pub status: OrderStatus,
    pub created_at_ms: i64,
    /// Seats given back by cancellations, in the order they were given back.
    pub cancelled_seat_ids: Vec<String>,
    /// When each of `cancelled_seat_ids` was given back (index for index); empty for orders
    /// whose cancellations were stored before the time was kept.
    pub cancelled_at_ms: Vec<i64>,
    /// What the cancellations refunded so far, in minor units.
    pub refunded_minor: i64,
    /// Bumped by every cancellation; a cancellation applies only to the revision it read.
    pub revision: i64,
    /// The buyer's e-mail address when they bought, for the notifications; orders stored
    /// before it was kept have none.
    pub email: Option<String>,
}

/// What became of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum OrderStatus {
    /// Bought and paid for; `reserved` on the wire and in the stores, as existing clients and
    /// records have it.
    #[serde(rename = "reserved")]
    Bought,
    /// Some of its seats were cancelled and refunded; the rest still stand.
    #[serde(rename = "partially_cancelled")]
    PartlyCancelled,
    /// Every seat was cancelled and refunded.
    #[serde(rename = "cancelled")]
    Cancelled,
}

impl OrderStatus {
    /// The stored and answered spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bought => "reserved",
            Self::PartlyCancelled => "partially_cancelled",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status a stored spelling names.
    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "reserved" => Some(Self::Bought),
            "partially_cancelled" => Some(Self::PartlyCancelled),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// Marks the payment id of an order of free seats.
const FREE: &str = "free:";

impl Order {
    /// The payment id recorded for a free order.
    pub fn free_payment_id(order_id: &str) -> String {
        format!("{FREE}{order_id}")
    }

    /// The intent that paid for the order; `None` when the seats were free.
    pub fn paid_with(&self) -> Option<&str> {
        (!self.payment_intent_id.starts_with(FREE)).then_some(self.payment_intent_id.as_str())
    }

    /// The seats that still stand (bought and not cancelled).
    pub fn standing_seats(&self) -> impl Iterator<Item = &String> {
        self.seat_ids
            .iter()
            .filter(|seat| !self.cancelled_seat_ids.contains(seat))
    }

    /// The cancelled seats, each with when it was given back (`None` when not recorded).
    pub fn cancelled_seats(&self) -> impl Iterator<Item = (&String, Option<i64>)> {
        self.cancelled_seat_ids
            .iter()
            .enumerate()
            .map(|(i, seat)| (seat, self.cancelled_at_ms.get(i).copied()))
    }
}

/// The simulated refund of a cancellation: always `refunded` at once, for `amount_minor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub refund_id: String,
    pub order_id: String,
    pub event_id: String,
    /// The buyer.
    pub user_id: String,
    /// The intent refunded; `None` for free seats.
    pub payment_intent_id: Option<String>,
    /// The seats this cancellation gave back.
    pub seat_ids: Vec<String>,
    pub amount_minor: i64,
    pub currency: String,
    /// Who cancelled: the buyer, the organizer or an admin.
    pub cancelled_by: String,
    pub created_at_ms: i64,
}

/// Everything one cancellation writes: the order as it becomes (its revision already bumped),
/// the seats it releases, the refund and the `order.cancelled` message.
#[derive(Debug, Clone)]
pub struct NewCancellation {
    pub order: Order,
    pub released: Vec<String>,
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

/// One user's place on an event's waitlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitlistEntry {
    pub event_id: String,
    pub user_id: String,
    /// How many seats the user wants.
    pub seats: usize,
    pub joined_at_ms: i64,
    /// Where offers are mailed: the user's address when they joined.
    pub email: Option<String>,
    /// The hold offered to the user, while an offer stands.
    pub offer: Option<Offer>,
}

/// Seats held for a waitlisted user until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub hold_id: String,
    pub until_ms: i64,
}

/// Where a user stands on a waitlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub entry: WaitlistEntry,
    /// 1 for the head of the queue.
    pub position: usize,
    /// How many are on the waitlist in all.
    pub length: usize,
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
    pub idempotency: Option<IdempotentResponse>,
    pub outbox: OutboxMessage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseOutcome {
    Committed,
    /// Nothing was written: these seats are already sold.
    SeatsTaken(Vec<String>),
    /// Nothing was written: the payment intent already paid for an order.
    IntentUsed,
    /// Nothing was written: this user's Idempotency-Key is already stored and not expired.
    KeyUsed,
}

/// An event's sold seats, each with the order that bought it.
pub type SoldSeats = HashMap<String, String>;

#[async_trait]
pub trait OrderRepository: Send + Sync + 'static {
    async fn sold_seats(&self, event_id: &str) -> Result<SoldSeats, RepoError>;
    async fn purchase(&self, purchase: &NewPurchase) -> Result<PurchaseOutcome, RepoError>;
    /// The stored answer for `user_id`'s `key`, unless it had expired at `now_ms`.
    async fn idempotent_response(
        &self,
        user_id: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<IdempotentResponse>, RepoError>;
    /// The user's orders, newest first.
    async fn orders_of(&self, user_id: &str) -> Result<Vec<Order>, RepoError>;
    async fn order(&self, order_id: &str) -> Result<Option<Order>, RepoError>;
    /// Outbox messages not yet published, oldest first.
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, RepoError>;
    async fn mark_sent(&self, id: &str) -> Result<(), RepoError>;

    /// Applies a cancellation in one transaction — the order updated if it is still at the
    /// revision before `cancellation.order.revision`, its released seats' sold records deleted,
    /// the refund and the outbox message written — or nothing.
    async fn cancel(&self, cancellation: &NewCancellation) -> Result<CancelOutcome, RepoError>;
    /// The refunds of an order, oldest first.
    async fn refunds_of(&self, order_id: &str) -> Result<Vec<Refund>, RepoError>;
    /// Every order of an event.
    async fn orders_of_event(&self, event_id: &str) -> Result<Vec<Order>, RepoError>;
    /// Every refund of an event.
    async fn refunds_of_event(&self, event_id: &str) -> Result<Vec<Refund>, RepoError>;

    /// Adds the user to the event's waitlist; `false` (and nothing changes) when they are on it.
    async fn join_waitlist(&self, entry: &WaitlistEntry) -> Result<bool, RepoError>;
    /// The user's place on the event's waitlist (reads the whole queue: a position needs it).
    async fn waitlist_place(
        &self,
        event_id: &str,
        user_id: &str,
    ) -> Result<Option<Place>, RepoError> {
        Ok(place_in(self.waitlist(event_id).await?, user_id))
    }
    /// Takes the user off the event's waitlist; the entry as it was, if there was one.
    async fn leave_waitlist(
        &self,
        event_id: &str,
        user_id: &str,
    ) -> Result<Option<WaitlistEntry>, RepoError>;
    /// The event's waitlist in queue order (first come, first served).
    async fn waitlist(&self, event_id: &str) -> Result<Vec<WaitlistEntry>, RepoError>;
    /// Records `offer` for the user if they are waiting without one, with `announce` in the
    /// outbox in the same transaction; whether it was recorded. This is what makes an offer
    /// happen once, whichever process made it.
    async fn record_offer(
        &self,
        event_id: &str,
        user_id: &str,
        offer: &Offer,
        announce: Option<&OutboxMessage>,
    ) -> Result<bool, RepoError>;
    /// Takes the user whose offer is the hold `hold_id` off the waitlist (the offer was bought
    /// or ran out), with `announce` in the outbox in the same transaction; the entry, if it was
    /// there (nothing is announced otherwise).
    async fn end_offer(
        &self,
        event_id: &str,
        hold_id: &str,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError>;
}

/// Where `user_id` stands in `queue` (the event's waitlist in queue order).
fn place_in(queue: Vec<WaitlistEntry>, user_id: &str) -> Option<Place> {
    let length = queue.len();
    let index = queue.iter().position(|e| e.user_id == user_id)?;
    let entry = queue.into_iter().nth(index)?;
    Some(Place {
        entry,
        position: index + 1,
        length,
    })
}

pub fn orders(store: &Database) -> Arc<dyn OrderRepository> {
    match store {
        Database::Sqlite(db) => Arc::new(SqliteOrders::new(db.clone())),
        Database::Mongo(db) => Arc::new(MongoOrders::new(db)),
    }
}
