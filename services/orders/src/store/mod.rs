//! Where orders are kept: the [`OrderRepository`] port with a SQLite and a MongoDB adapter.
//!
//! A purchase is ONE transaction: a sold-seat record per seat under a unique (event, seat) key,
//! the order (its payment intent id unique, its idempotency key and first answer with it), and
//! an outbox message `order.purchased`. Either all of it is stored or none of it; the unique keys,
//! not the hold keys, are what make a seat sell at most once.

pub mod board;
pub mod holds;
pub mod line;
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
        r"
        -- Pruning (common::retention): published outbox messages and expired idempotency
        -- records, found by when they were done with.
        CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
        CREATE INDEX idempotency_expiry ON idempotency (expires_at);
    ",
        r"
        -- The waitlist as a line (see store::line): a sequence number per entry, the count of
        -- entries per block of numbers at levels 1 to 4, and per event the next number, the
        -- entries and the seats wanted; places are counted from these, never by reading the
        -- queue. Entries so far are numbered in the order they were served (joined_at, user).
        ALTER TABLE waitlist ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
        UPDATE waitlist SET seq = (
            SELECT n FROM (
                SELECT event_id AS e, user_id AS u,
                       ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY joined_at, user_id) AS n
                FROM waitlist
            ) WHERE e = waitlist.event_id AND u = waitlist.user_id
        );
        DROP INDEX waitlist_queue;
        CREATE UNIQUE INDEX waitlist_line ON waitlist (event_id, seq);
        CREATE INDEX waitlist_wanting ON waitlist (event_id, seats, seq)
            WHERE offer_hold_id IS NULL;
        CREATE INDEX waitlist_offers ON waitlist (event_id, offer_until)
            WHERE offer_hold_id IS NOT NULL;
        CREATE INDEX waitlist_offer_holds ON waitlist (event_id, offer_hold_id)
            WHERE offer_hold_id IS NOT NULL;
        CREATE TABLE waitlist_lines (
            event_id TEXT PRIMARY KEY,
            next_seq INTEGER NOT NULL,
            entries  INTEGER NOT NULL,
            seats    INTEGER NOT NULL
        );
        INSERT INTO waitlist_lines
            SELECT event_id, MAX(seq) + 1, COUNT(*), SUM(seats) FROM waitlist GROUP BY event_id;
        CREATE TABLE waitlist_blocks (
            event_id TEXT NOT NULL,
            level    INTEGER NOT NULL,
            block    INTEGER NOT NULL,
            entries  INTEGER NOT NULL,
            PRIMARY KEY (event_id, level, block)
        ) WITHOUT ROWID;
        INSERT INTO waitlist_blocks
            SELECT event_id, 1, seq >> 8, COUNT(*) FROM waitlist GROUP BY event_id, seq >> 8;
        INSERT INTO waitlist_blocks
            SELECT event_id, 2, seq >> 16, COUNT(*) FROM waitlist GROUP BY event_id, seq >> 16;
        INSERT INTO waitlist_blocks
            SELECT event_id, 3, seq >> 24, COUNT(*) FROM waitlist GROUP BY event_id, seq >> 24;
        INSERT INTO waitlist_blocks
            SELECT event_id, 4, seq >> 32, COUNT(*) FROM waitlist GROUP BY event_id, seq >> 32;
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
        // The line's reads (see `line`): places by sequence number, the head by seats wanted,
        // offers by end and by hold, block counts by level.
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_line",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("seq", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_wanting",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("seats", IndexOrder::Ascending),
                ("seq", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_offers",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("offerUntil", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "waitlist",
            name: "waitlist_offer_holds",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("offerHoldId", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "waitlist_blocks",
            name: "waitlist_blocks_by_level",
            keys: &[
                ("eventId", IndexOrder::Ascending),
                ("level", IndexOrder::Ascending),
                ("block", IndexOrder::Ascending),
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
    /// Where the entry stands in the event's line (see [`line`]): given by the store when the
    /// user joins, 0 before.
    pub seq: u64,
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

/// An event's waitlist in figures, for the sales view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitlistSummary {
    pub entries: usize,
    /// Seats wanted, all entries together.
    pub seats: usize,
    /// Offers standing.
    pub offers: usize,
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
    /// Deletes at most `limit` records that are done with: outbox messages published before
    /// `sent_before_ms` and idempotency records expired at `now_ms`; how many went.
    async fn prune(
        &self,
        sent_before_ms: i64,
        now_ms: i64,
        limit: usize,
    ) -> Result<usize, RepoError>;

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

    /// Adds the user to the end of the event's waitlist; `false` (and nothing changes) when
    /// they are on it.
    async fn join_waitlist(&self, entry: &WaitlistEntry) -> Result<bool, RepoError>;
    /// The user's place on the event's waitlist, counted from the line's blocks (see [`line`]):
    /// bounded work whatever the length of the queue.
    async fn waitlist_place(
        &self,
        event_id: &str,
        user_id: &str,
    ) -> Result<Option<Place>, RepoError>;
    /// Takes the user off the event's waitlist, with `announce` in the outbox in the same
    /// transaction; the entry as it was, if there was one (nothing is announced otherwise).
    async fn leave_waitlist(
        &self,
        event_id: &str,
        user_id: &str,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError>;
    /// The first entries in line without an offer that want 1 to `max_seats` seats, leaving out
    /// the users in `skip`; at most `limit`, in queue order (indexed reads by seats wanted,
    /// never a scan of the queue).
    async fn next_in_line(
        &self,
        event_id: &str,
        max_seats: usize,
        skip: &[String],
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError>;
    /// Entries without an offer that want more than `max_seats` seats (the limit was lowered
    /// since they joined); at most `limit`.
    async fn oversized_entries(
        &self,
        event_id: &str,
        max_seats: usize,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError>;
    /// Entries whose offer ended before `before_ms`; at most `limit`.
    async fn offers_ended_before(
        &self,
        event_id: &str,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError>;
    /// Whether any offer stands on the event.
    async fn has_offers(&self, event_id: &str) -> Result<bool, RepoError>;
    /// The event's waitlist in figures (kept with the line, so no read of the queue).
    async fn waitlist_summary(&self, event_id: &str) -> Result<WaitlistSummary, RepoError>;
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

pub fn orders(store: &Database) -> Arc<dyn OrderRepository> {
    match store {
        Database::Sqlite(db) => Arc::new(SqliteOrders::new(db.clone())),
        Database::Mongo(db) => Arc::new(MongoOrders::new(db)),
    }
}
