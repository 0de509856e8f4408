//! Where events are kept: the [`EventRepository`] port with a SQLite and a MongoDB adapter.
//!
//! Text search (`q`) means the same on both adapters: the query is split into words (runs of
//! letters and digits, lower-cased, at most 16), and an event matches when EVERY word begins a
//! word of its title or description — `jaz` finds "Jazz night", `night jaz` too, `azz` does
//! not. Case is ignored, accents are not (`cafe` does not find "Café"). SQLite answers it with
//! an FTS5 index (prefix queries); MongoDB with an indexed array of each event's words (see
//! `mongo.rs`), which needs no text index. Lists are sorted by date, then id.

mod mongo;
mod sqlite;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use holdfast_common::docstore::{Database, IndexOrder, IndexSpec, Schema, StoreError};

use crate::domain::event::Event;

pub use self::mongo::MongoEvents;
pub use self::sqlite::SqliteEvents;

pub const SCHEMA: Schema = Schema {
    sqlite_migrations: &[
        r"
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
    ",
        r"
        -- Accents are significant, as in the MongoDB adapter's word index.
        DROP TABLE events_fts;
        CREATE VIRTUAL TABLE events_fts USING fts5 (
            title, description, content = 'events', content_rowid = 'rowid',
            tokenize = 'unicode61 remove_diacritics 0'
        );
        INSERT INTO events_fts (events_fts) VALUES ('rebuild');
    ",
        r"
        -- The IANA zone offset-less dates of the event are read in.
        ALTER TABLE events ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
    ",
        r"
        -- The venue layout as JSON (NULL: a grid of rows x seats_per_row).
        ALTER TABLE events ADD COLUMN venue TEXT;
    ",
    ],
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
            name: "events_search_words",
            keys: &[("searchWords", IndexOrder::Ascending)],
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
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

pub async fn events(store: &Database) -> Result<Arc<dyn EventRepository>, RepoError> {
    Ok(match store {
        Database::Sqlite(db) => Arc::new(SqliteEvents::new(db.clone())),
        Database::Mongo(db) => Arc::new(MongoEvents::open(db).await?),
    })
}

/// The lower-cased words of `text`: runs of letters and digits, as FTS5's tokenizer sees them.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The words of a search, without characters that mean something to a query language.
pub fn search_terms(text: &str) -> Vec<String> {
    words(text).take(16).collect()
}

/// The distinct words an event is found by: those of its title and description.
pub fn searchable_words(event: &Event) -> Vec<String> {
    let mut found: Vec<String> = words(&event.title)
        .chain(
            event
                .description
                .as_deref()
                .map(words)
                .into_iter()
                .flatten(),
        )
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}
