//! The embedded document store: one SQLite file per service.
//!
//! One connection behind a mutex, used from Tokio's blocking pool: SQLite serialises writers
//! anyway, and a single connection makes `BEGIN IMMEDIATE` transactions simple to reason about.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::StoreError;

/// An open SQLite database; cheap to clone.
#[derive(Clone)]
pub struct SqliteDb {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteDb {
    /// Opens (creating if needed) the database at `path` in WAL mode and applies the
    /// migrations it has not seen yet, each in its own transaction.
    pub async fn open(
        path: &Path,
        migrations: &'static [&'static str],
    ) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let opened = path.clone();
        let connection = tokio::task::spawn_blocking(move || open_blocking(&opened, migrations))
            .await
            .map_err(|e| StoreError::Open(e.to_string()))??;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            path,
        })
    }

    /// Where the database file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` with the connection on the blocking pool.
    pub async fn call<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = crate::sync::lock(&connection);
            work(&mut connection)
        })
        .await
        .map_err(|e| StoreError::Open(format!("database task failed: {e}")))?
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(|c| Ok(c.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
            .await
            .map(|_| ())
    }
}

fn open_blocking(path: &Path, migrations: &[&str]) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Open(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut connection = Connection::open(path)?;
    // Before anything that may wait for another process's lock (switching to WAL does).
    connection.busy_timeout(MIGRATION_BUSY_TIMEOUT)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut connection, migrations)?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(connection)
}

/// How long a process waits for another one's migration (or write) before giving up.
const MIGRATION_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Applies the migrations the database has not seen, one `BEGIN IMMEDIATE` transaction each:
/// the applied count is read inside the transaction that holds the write lock, so processes
/// starting together on one file take turns, and each migration runs exactly once.
fn migrate(connection: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    loop {
        let transaction =
            connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied: i64 =
            transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let applied = usize::try_from(applied).unwrap_or(usize::MAX);
        if applied > migrations.len() {
            return Err(StoreError::Open(format!(
                "the database has {applied} migrations applied but this build knows {}; \
                 it was written by a newer version",
                migrations.len()
            )));
        }
        let Some(script) = migrations.get(applied) else {
            transaction.commit()?;
            break;
        };
        transaction.execute_batch(script)?;
        transaction.pragma_update(
            None,
            "user_version",
            i64::try_from(applied + 1).unwrap_or(i64::MAX),
        )?;
        transaction.commit()?;
        tracing::info!(migration = applied + 1, "applied SQLite migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first migration slow enough that processes starting together overlap in it.
    const SLOW: &[&str] = &[
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
         INSERT INTO items SELECT i, 'item ' || i FROM n;",
        "CREATE INDEX items_by_name ON items (name);",
    ];

    /// Four openers of one fresh file at the same moment (each its own connection, as separate
    /// processes have): every one starts, and each migration ran once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn processes_starting_together_take_turns_to_migrate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.sqlite3");
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqliteDb::open(&path, SLOW).await })
            })
            .collect();
        for opener in openers {
            let db = opener.await.unwrap().expect("every process starts");
            let (count, version) = db
                .call(|c| {
                    let count: i64 = c.query_row("SELECT count(*) FROM items", [], |r| r.get(0))?;
                    let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
                    Ok((count, version))
                })
                .await
                .unwrap();
            assert_eq!((count, version), (200_000, 2));
        }
    }

    const V1: &[&str] = &["CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL);"];
    const V2: &[&str] = &[
        "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL);",
        "CREATE INDEX items_by_name ON items (name);",
    ];

    #[tokio::test]
    async fn migrations_apply_once_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/svc.sqlite3");
        let db = SqliteDb::open(&path, V1).await.unwrap();
        db.call(|c| Ok(c.execute("INSERT INTO items VALUES ('1', 'kept')", [])?))
            .await
            .unwrap();
        drop(db);
        // Reopening with one more migration keeps the data and applies only the new script.
        let db = SqliteDb::open(&path, V2).await.unwrap();
        let (version, name, indexes): (i64, String, i64) = db
            .call(|c| {
                let version = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
                let name =
                    c.query_row("SELECT name FROM items WHERE id = '1'", [], |r| r.get(0))?;
                let indexes = c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'items_by_name'",
                    [],
                    |r| r.get(0),
                )?;
                Ok((version, name, indexes))
            })
            .await
            .unwrap();
        assert_eq!((version, name.as_str(), indexes), (2, "kept", 1));
    }

    #[tokio::test]
    async fn the_database_runs_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("wal.sqlite3"), V1)
            .await
            .unwrap();
        let mode: String = db
            .call(|c| Ok(c.pragma_query_value(None, "journal_mode", |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        db.ping().await.unwrap();
    }

    #[tokio::test]
    async fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.sqlite3");
        drop(SqliteDb::open(&path, V2).await.unwrap());
        let Err(err) = SqliteDb::open(&path, V1).await else {
            panic!("a newer schema must be refused")
        };
        assert!(err.to_string().contains("newer version"), "{err}");
    }

    #[tokio::test]
    async fn a_failing_migration_leaves_nothing_half_applied() {
        const BROKEN: &[&str] = &["CREATE TABLE a (x INTEGER); CREATE TABLE oops (;"];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.sqlite3");
        assert!(SqliteDb::open(&path, BROKEN).await.is_err());
        let db = SqliteDb::open(&path, &[]).await.unwrap();
        let tables: i64 = db
            .call(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'a'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(tables, 0);
    }
}
