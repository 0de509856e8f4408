//! Where events are kept: the [`EventRepository`] port with a SQLite and a MongoDB adapter.
//!
//! Text search (`q`) uses SQLite's FTS5 over title and description (every word must match, as a
//! prefix) and, on MongoDB, a text index over the same fields (MongoDB's `$text` semantics:
//! whole stemmed words, any of them). Lists are sorted by date, then id.

mod mongo;
mod sqlite;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use holdfast_common::docstore::{DocumentStore, IndexOrder, IndexSpec, Schema, StoreError};

use crate::domain::event::Event;

pub use self::mongo::MongoEvents;
pub use self::sqlite::SqliteEvents;

pub const SCHEMA: Schema = Schema {
    sqlite_migrations: &[r"
        CREATE TABLE events (
            id            TEXT PRIMARY KEY,
            title         TEXT NOT NULL,
            description   TEXT,
            date          TEXT NOT NULL,
            date_ms       INTEGER NOT NULL,
            location      TEXT,
            tags          TEXT NOT NULL DEFAULT '[]',
            image_url     TEXT,
            organizer_id  TEXT NOT NULL,
            rows          INTEGER NOT NULL,
            seats_per_row INTEGER NOT NULL,
            price_minor   INTEGER NOT NULL,
            currency      TEXT NOT NULL
        );
        CREATE INDEX events_by_date ON events (date_ms, id);
        CREATE VIRTUAL TABLE events_fts USING fts5 (
            title, description, content = 'events', content_rowid = 'rowid'
        );
        CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
            INSERT INTO events_fts (rowid, title, description)
            VALUES (new.rowid, new.title, coalesce(new.description, ''));
        END;
        CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
            INSERT INTO events_fts (events_fts, rowid, title, description)
            VALUES ('delete', old.rowid, old.title, coalesce(old.description, ''));
        END;
        CREATE TRIGGER events_fts_update AFTER UPDATE ON events BEGIN
            INSERT INTO events_fts (events_fts, rowid, title, description)
            VALUES ('delete', old.rowid, old.title, coalesce(old.description, ''));
            INSERT INTO events_fts (rowid, title, description)
            VALUES (new.rowid, new.title, coalesce(new.description, ''));
        END;
    "],
    mongo_indexes: &[
        IndexSpec {
            collection: "events",
            name: "events_by_date",
            keys: &[
                ("dateMs", IndexOrder::Ascending),
                ("_id", IndexOrder::Ascending),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "events",
            name: "events_text",
            keys: &[
                ("title", IndexOrder::Text),
                ("description", IndexOrder::Text),
            ],
            unique: false,
        },
        IndexSpec {
            collection: "events",
            name: "events_by_tag",
            keys: &[("tags", IndexOrder::Ascending)],
            unique: false,
        },
    ],
};

/// The store's failures; a record that does not decode is `Corrupt`.
pub type RepoError = StoreError;

/// A page of the event list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Words to find in title or description.
    pub text: Option<String>,
    /// Events carrying this tag (case-insensitive).
    pub tag: Option<String>,
    /// Events on or after this instant (ms).
    pub from_ms: Option<i64>,
    /// Events on or before this instant (ms).
    pub to_ms: Option<i64>,
    pub offset: u64,
    pub limit: u64,
}

#[async_trait]
pub trait EventRepository: Send + Sync + 'static {
    async fn insert(&self, event: &Event) -> Result<(), RepoError>;
    async fn get(&self, id: &str) -> Result<Option<Event>, RepoError>;
    /// Replaces a stored event; answers whether it existed.
    async fn update(&self, event: &Event) -> Result<bool, RepoError>;
    /// Removes an event; answers whether it existed.
    async fn delete(&self, id: &str) -> Result<bool, RepoError>;
    /// One page of the matching events sorted by date, and how many match in all.
    async fn search(&self, query: &EventQuery) -> Result<(Vec<Event>, u64), RepoError>;
    /// How many events there are (for seeding).
    async fn count(&self) -> Result<u64, RepoError>;
}

pub fn events(store: &DocumentStore) -> Arc<dyn EventRepository> {
    match store {
        DocumentStore::Sqlite(db) => Arc::new(SqliteEvents::new(db.clone())),
        DocumentStore::Mongo(db) => Arc::new(MongoEvents::new(db)),
    }
}

/// The words of a search, without characters that mean something to a query language.
pub fn search_terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(str::to_lowercase)
        .collect()
}
