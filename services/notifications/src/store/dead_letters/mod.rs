//! The dead letters kept for operators: every message the bus gave up on (see
//! `holdfast_common::bus`), as the dead-letter queue delivered it, until an admin re-drives it.
//!
//! A letter with a message id is kept under an id derived from its queue and message id, so
//! the dead-letter queue's at-least-once delivery keeps one record, and a re-driven message
//! that dies again is the same record `WAITING` once more (its `deaths` counted). Letters
//! without a message id (an undecodable body) get a random id.

mod mongo;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use holdfast_common::bus::DeadLetter;
use holdfast_common::docstore::{Database, StoreError};

pub use self::mongo::MongoDeadLetters;
pub use self::sqlite::SqliteDeadLetters;

/// Whether a dead letter still waits for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterStatus {
    Waiting,
    Redriven,
}

impl DeadLetterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "WAITING",
            Self::Redriven => "REDRIVEN",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Waiting, Self::Redriven]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// One dead letter and what an operator did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRecord {
    pub id: String,
    pub letter: DeadLetter,
    pub status: DeadLetterStatus,
    /// How many times this message died (re-driven messages can die again).
    pub deaths: u32,
    /// When it last died.
    pub dead_at_ms: i64,
    pub redriven_at_ms: Option<i64>,
}

impl DeadLetterRecord {
    /// The record of `letter`, dead at `now_ms`, under the id that de-duplicates it.
    pub fn new(letter: DeadLetter, now_ms: i64) -> Self {
        let id = match &letter.message_id {
            Some(message_id) => Self::id_of(&letter.queue, message_id),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        Self {
            id,
            letter,
            status: DeadLetterStatus::Waiting,
            deaths: 1,
            dead_at_ms: now_ms,
            redriven_at_ms: None,
        }
    }
}

impl DeadLetterRecord {
    /// The id of the record of message `message_id` dead in `queue`: 32 hex digits, safe in
    /// a path.
    pub fn id_of(queue: &str, message_id: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{queue}\n{message_id}"));
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where a page of dead letters starts: after this one (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub dead_at_ms: i64,
    pub id: String,
}

/// The dead letters' storage; one adapter per document store.
#[async_trait]
pub trait DeadLetterLog: Send + Sync + 'static {
    /// Keeps `record`: new, or (same id) dead again — a waiting one is left as it is (a
    /// redelivery of the dead-letter queue), a re-driven one waits again with the new reason
    /// and one death more.
    async fn keep(&self, record: &DeadLetterRecord) -> Result<(), StoreError>;

    /// Up to `limit` records, newest death first, of `status` if given, after `after`.
    async fn list(
        &self,
        status: Option<DeadLetterStatus>,
        after: Option<&After>,
        limit: usize,
    ) -> Result<Vec<DeadLetterRecord>, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<DeadLetterRecord>, StoreError>;

    /// Marks a waiting record re-driven at `now_ms`; false when it was not waiting (another
    /// admin re-drove it first).
    async fn mark_redriven(&self, id: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// How many records wait.
    async fn waiting(&self) -> Result<u64, StoreError>;
}

/// The dead letters of `store`.
pub fn dead_letters(store: &Database) -> Arc<dyn DeadLetterLog> {
    match store {
        Database::Sqlite(db) => Arc::new(SqliteDeadLetters::new(db.clone())),
        Database::Mongo(db) => Arc::new(MongoDeadLetters::new(db)),
    }
}
