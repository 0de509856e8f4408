//! Where users are kept: the [`UserRepository`] port with a SQLite and a MongoDB adapter.

mod mongo;
pub mod sessions;
mod sqlite;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use holdfast_common::auth::Role;
use holdfast_common::docstore::{Database, IndexOrder, IndexSpec, Schema, StoreError};

use crate::domain::user::{Email, User};

pub use self::mongo::MongoUsers;
pub use self::sqlite::SqliteUsers;

/// The storage the auth service needs.
pub const SCHEMA: Schema = Schema {
    sqlite_migrations: &[r"
        CREATE TABLE users (
            id            TEXT PRIMARY KEY,
            email         TEXT NOT NULL UNIQUE,
            name          TEXT,
            role          TEXT NOT NULL CHECK (role IN ('user', 'organizer', 'admin')),
            password_hash TEXT NOT NULL,
            created_at    INTEGER NOT NULL
        );
    "],
    mongo_indexes: &[IndexSpec {
        collection: "users",
        name: "users_unique_email",
        keys: &[("email", IndexOrder::Ascending)],
        unique: true,
    }],
};

pub type RepoError = StoreError;

/// Whether a new user was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Created {
    Created,
    /// Nothing was written: an account with this email exists.
    EmailTaken,
}

/// Users, by id and by (normalised) email.
#[async_trait]
pub trait UserRepository: Send + Sync + 'static {
    /// Stores a new user unless the email is taken.
    async fn create(&self, user: &User) -> Result<Created, RepoError>;
    async fn by_email(&self, email: &Email) -> Result<Option<User>, RepoError>;
    async fn by_id(&self, id: &str) -> Result<Option<User>, RepoError>;
    /// Every user, oldest first.
    async fn list(&self) -> Result<Vec<User>, RepoError>;
    /// Changes a user's role; `None` when there is no such user.
    async fn set_role(&self, id: &str, role: Role) -> Result<Option<User>, RepoError>;
}

/// The adapter for an opened document store.
pub fn users(store: &Database) -> Arc<dyn UserRepository> {
    match store {
        Database::Sqlite(db) => Arc::new(SqliteUsers::new(db.clone())),
        Database::Mongo(db) => Arc::new(MongoUsers::new(db)),
    }
}

fn parse_role(raw: &str) -> Result<Role, RepoError> {
    raw.parse()
        .map_err(|_| RepoError::Corrupt(format!("unknown role {raw:?}")))
}

fn parse_email(raw: &str) -> Result<Email, RepoError> {
    Email::parse(raw).map_err(|_| RepoError::Corrupt(format!("bad email {raw:?}")))
}
