//! The delivery log: one record per mail, keyed by the id of the bus message that made it
//! (`<id>.<n>` for the further mails of a message that makes several).
//!
//! A record is `PENDING` until a sender claims it, `SENDING` while it is being sent (the
//! claim is a lease: a sender that dies mid-send leaves a record that falls due again when the
//! lease ends), then `SENT`, or `PENDING` again with a later `nextAttemptAt` after a failed
//! attempt, or `DEAD` once the attempts are spent. Claiming is one atomic update per record,
//! so two senders never send the same record at once. A record whose mail reached the relay
//! just as its sender died is sent again when the lease ends: delivery is at least once.

pub mod dead_letters;
mod mongo;
mod sqlite;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use holdfast_common::docstore::{Database, IndexOrder, IndexSpec, Schema, StoreError};

pub use self::mongo::MongoDeliveries;
pub use self::sqlite::SqliteDeliveries;

pub const SCHEMA: Schema = Schema {
    sqlite_migrations: &[
        r"
        CREATE TABLE deliveries (
            message_id      TEXT PRIMARY KEY,
            routing_key     TEXT NOT NULL,
            recipient       TEXT NOT NULL,
            subject         TEXT NOT NULL,
            body            TEXT NOT NULL,
            status          TEXT NOT NULL,
            attempts        INTEGER NOT NULL,
            next_attempt_at INTEGER NOT NULL,
            last_error      TEXT,
            created_at      INTEGER NOT NULL,
            sent_at         INTEGER
        );
        CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
    ",
        r"
        -- Pruning finished records (common::retention) by when they were made.
        CREATE INDEX deliveries_finished ON deliveries (status, created_at);
    ",
        r"
        -- Mails with an HTML alternative and attachments (JSON: filename, contentType,
        -- contentId, data in base64).
        ALTER TABLE deliveries ADD COLUMN html TEXT;
        ALTER TABLE deliveries ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
    ",
        r"
        -- The bus's dead letters, kept for operators (store::dead_letters).
        CREATE TABLE dead_letters (
            id          TEXT PRIMARY KEY,
            queue       TEXT NOT NULL,
            routing_key TEXT NOT NULL,
            reason      TEXT NOT NULL,
            body        TEXT NOT NULL,
            message_id  TEXT,
            status      TEXT NOT NULL,
            deaths      INTEGER NOT NULL,
            dead_at     INTEGER NOT NULL,
            redriven_at INTEGER
        );
        CREATE INDEX dead_letters_newest ON dead_letters (status, dead_at);
        CREATE INDEX deliveries_dead ON deliveries (status, created_at DESC);
    ",
    ],
    mongo_indexes: &[
        IndexSpec {
            collection: "deliveries",
            name: "deliveries_due",
            keys: &[
                ("status", IndexOrder::Ascending),
                ("nextAttemptAt", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "dead_letters",
            name: "dead_letters_newest",
            keys: &[
                ("status", IndexOrder::Ascending),
                ("deadAt", IndexOrder::Descending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "deliveries",
            name: "deliveries_finished",
            keys: &[
                ("status", IndexOrder::Ascending),
                ("createdAt", IndexOrder::Ascending),
            ],
            unique: false,
        },
    ],
};

/// Where a mail is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Sending,
    Sent,
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Sending => "SENDING",
            Self::Sent => "SENT",
            Self::Dead => "DEAD",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Sending, Self::Sent, Self::Dead]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// One mail and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The id of the bus message the mail was made from.
    pub message_id: String,
    pub routing_key: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub html: Option<String>,
    pub attachments: Vec<crate::compose::Attachment>,
    pub status: DeliveryStatus,
    /// Attempts started so far (a claim counts as one).
    pub attempts: u32,
    /// When a pending record falls due, or a sending one's lease ends.
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub sent_at_ms: Option<i64>,
}

impl Delivery {
    /// A record due at once, not tried yet.
    pub fn new(
        message_id: String,
        routing_key: String,
        mail: crate::compose::Mail,
        now_ms: i64,
    ) -> Self {
        Self {
            message_id,
            routing_key,
            recipient: mail.to,
            subject: mail.subject,
            body: mail.body,
            html: mail.html,
            attachments: mail.attachments,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at_ms: now_ms,
            last_error: None,
            created_at_ms: now_ms,
            sent_at_ms: None,
        }
    }
}

/// The delivery log's storage; one adapter per document store.
#[async_trait]
pub trait DeliveryLog: Send + Sync + 'static {
    /// Keeps `delivery`; false (and nothing changes) when its message id is already logged.
    async fn record(&self, delivery: &Delivery) -> Result<bool, StoreError>;

    /// Claims up to `limit` records due at `now_ms` (pending, or sending with an ended lease),
    /// soonest first: each becomes `SENDING` until `lease_until_ms`, one attempt more.
    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Marks the claimed attempt `attempt` of `message_id` sent. An attempt whose lease
    /// ended and that another sender claimed again changes nothing.
    async fn mark_sent(
        &self,
        message_id: &str,
        attempt: u32,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Records the failure of attempt `attempt`: pending again from `retry_at_ms`, or `DEAD`
    /// when that is `None`.
    async fn mark_failed(
        &self,
        message_id: &str,
        attempt: u32,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StoreError>;

    /// When the soonest pending or sending record falls due.
    async fn next_due(&self) -> Result<Option<i64>, StoreError>;

    async fn get(&self, message_id: &str) -> Result<Option<Delivery>, StoreError>;

    /// Up to `limit` mails given up on (`DEAD`), newest first, made before `before_ms`.
    async fn dead(&self, before_ms: Option<i64>, limit: usize)
    -> Result<Vec<Delivery>, StoreError>;

    /// Gives a `DEAD` mail a fresh set of attempts, due at `now_ms`; false when it was not dead.
    async fn revive(&self, message_id: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// Deletes at most `limit` finished records (`SENT` or `DEAD`) made before
    /// `finished_before_ms`; how many went. A message redelivered after its record went would
    /// be mailed again, so the retention is days, far past any redelivery.
    async fn prune(&self, finished_before_ms: i64, limit: usize) -> Result<usize, StoreError>;
}

/// The delivery log of `store`.
pub fn deliveries(store: &Database) -> Arc<dyn DeliveryLog> {
    match store {
        Database::Sqlite(db) => Arc::new(SqliteDeliveries::new(db.clone())),
        Database::Mongo(db) => Arc::new(MongoDeliveries::new(db)),
    }
}
