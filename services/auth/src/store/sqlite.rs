//! The SQLite adapter of [`UserRepository`].

use async_trait::async_trait;
use holdfast_common::auth::Role;
use holdfast_common::docstore::{SqliteDb, StoreError};
use rusqlite::{ErrorCode, OptionalExtension, Row, params};

use super::{Created, RepoError, UserRepository, parse_email, parse_role};
use crate::domain::user::{Email, User};

pub struct SqliteUsers {
    db: SqliteDb,
}

impl SqliteUsers {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

const COLUMNS: &str = "id, email, name, role, password_hash, created_at";

/// A row as stored, converted to a [`User`] outside the database closure.
struct UserRow {
    id: String,
    email: String,
    name: Option<String>,
    role: String,
    password_hash: String,
    created_at: i64,
}

impl UserRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            email: row.get(1)?,
            name: row.get(2)?,
            role: row.get(3)?,
            password_hash: row.get(4)?,
            created_at: row.get(5)?,
        })
    }

    fn into_user(self) -> Result<User, RepoError> {
        Ok(User {
            id: self.id,
            email: parse_email(&self.email)?,
            name: self.name,
            role: parse_role(&self.role)?,
            password_hash: self.password_hash,
            created_at: self.created_at,
        })
    }
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation)
}

impl SqliteUsers {
    async fn one(&self, sql: &'static str, key: String) -> Result<Option<User>, RepoError> {
        let row = self
            .db
            .call(move |c| Ok(c.query_row(sql, [key], UserRow::read).optional()?))
            .await?;
        row.map(UserRow::into_user).transpose()
    }
}

#[async_trait]
impl UserRepository for SqliteUsers {
    async fn create(&self, user: &User) -> Result<Created, RepoError> {
        let user = user.clone();
        let inserted = self
            .db
            .call(move |c| {
                let result = c.execute(
                    &format!("INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                    params![
                        user.id,
                        user.email.as_str(),
                        user.name,
                        user.role.as_str(),
                        user.password_hash,
                        user.created_at
                    ],
                );
                match result {
                    Ok(_) => Ok(true),
                    Err(e) if is_unique_violation(&e) => Ok(false),
                    Err(e) => Err(StoreError::from(e)),
                }
            })
            .await?;
        Ok(if inserted {
            Created::Created
        } else {
            Created::EmailTaken
        })
    }

    async fn by_email(&self, email: &Email) -> Result<Option<User>, RepoError> {
        self.one(
            "SELECT id, email, name, role, password_hash, created_at FROM users WHERE email = ?1",
            email.as_str().to_string(),
        )
        .await
    }

    async fn by_id(&self, id: &str) -> Result<Option<User>, RepoError> {
        self.one(
            "SELECT id, email, name, role, password_hash, created_at FROM users WHERE id = ?1",
            id.to_string(),
        )
        .await
    }

    async fn list(&self) -> Result<Vec<User>, RepoError> {
        let rows = self
            .db
            .call(|c| {
                let mut statement = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM users ORDER BY created_at, id"
                ))?;
                let rows = statement
                    .query_map([], UserRow::read)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    async fn set_role(&self, id: &str, role: Role) -> Result<Option<User>, RepoError> {
        let key = id.to_string();
        let changed = self
            .db
            .call(move |c| {
                Ok(c.execute(
                    "UPDATE users SET role = ?1 WHERE id = ?2",
                    params![role.as_str(), key],
                )?)
            })
            .await?;
        if changed == 0 {
            return Ok(None);
        }
        self.by_id(id).await
    }
}
