//! Document store plumbing: where each service keeps its records.
//!
//! A service declares its [`Schema`] (SQLite migrations and MongoDB indexes) and opens a
//! [`Database`] with it: MongoDB when `MONGODB_URI` is set (one database per service,
//! indexes created at start-up), otherwise one SQLite file per service under `DATA_DIR`
//! (WAL, migrations applied in order). Each service defines its own repository trait on top,
//! with one adapter per variant.

mod mongo;
mod sqlite;

use crate::config::Settings;

pub use self::mongo::{MongoDb, is_duplicate_key};
pub use self::sqlite::SqliteDb;

/// A failure of the document store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("mongodb: {}", mongo::describe(.0))]
    Mongo(#[from] mongodb::error::Error),
    #[error("cannot open the store: {0}")]
    Open(String),
    /// A stored record does not decode: written by hand, or by an incompatible version.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

/// The direction (or kind) of one field of an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexOrder {
    Ascending,
    Descending,
    /// A MongoDB TTL index: the document is removed once the date in this field has passed.
    /// The field must hold a BSON date; such an index has exactly one key.
    ExpiresAt,
}

/// A MongoDB index a service needs, created at start-up if missing.
#[derive(Debug, Clone, Copy)]
pub struct IndexSpec {
    pub collection: &'static str,
    pub name: &'static str,
    pub keys: &'static [(&'static str, IndexOrder)],
    pub unique: bool,
}

/// What a service's storage needs to exist before it serves.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// SQL scripts applied in order, each exactly once (tracked by `PRAGMA user_version`).
    pub sqlite_migrations: &'static [&'static str],
    pub mongo_indexes: &'static [IndexSpec],
}

/// The database one service keeps its records in, opened: SQLite files or a MongoDB database.
/// Each service's repositories pick their adapter by matching on it.
#[derive(Clone)]
pub enum Database {
    Sqlite(SqliteDb),
    Mongo(MongoDb),
}

impl Database {
    /// Opens the store of `service` as the settings choose, preparing `schema`.
    pub async fn open(
        settings: &Settings,
        service: &str,
        schema: &Schema,
    ) -> Result<Self, StoreError> {
        match &settings.mongodb_uri {
            Some(uri) => {
                let database = format!("{}_{service}", settings.mongodb_database_prefix);
                Ok(Self::Mongo(
                    MongoDb::connect(uri, &database, schema.mongo_indexes).await?,
                ))
            }
            None => {
                let path = settings.data_dir.join(format!("{service}.sqlite3"));
                Ok(Self::Sqlite(
                    SqliteDb::open(&path, schema.sqlite_migrations).await?,
                ))
            }
        }
    }

    /// Checks that the store answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(db) => db.ping().await,
            Self::Mongo(db) => db.ping().await,
        }
    }

    /// A short name of the adapter, for start-up logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Mongo(_) => "mongodb",
        }
    }
}
