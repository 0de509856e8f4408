//! Helpers for tests that need a real server (Redis, RabbitMQ, MongoDB).
//!
//! A suite whose server variable is unset is skipped with a visible message, except under
//! `CI=true`, where skipping would hide a broken set-up and therefore fails. MongoDB is the
//! exception: no CI machine has one, so its suites skip whenever `MONGODB_URI` is unset.

use std::io::Write;

/// The server URL in `var`, or `None` (after saying so) when the suite must be skipped.
///
/// # Panics
/// When `var` is unset and `CI=true`, unless `var` is `MONGODB_URI`.
pub fn server_url(var: &str) -> Option<String> {
    if let Some(url) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        return Some(url);
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if in_ci && var != "MONGODB_URI" {
        panic!("{var} is not set, but CI=true requires the {var} adapter suite to run");
    }
    // Written to the stderr handle directly: the test harness captures `eprintln!`, and a
    // skipped suite must be seen.
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: {var} is not set, so this {var} adapter test did not run"
    );
    None
}

/// A name no other test run uses, for keys, queues and exchanges on shared servers.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A document store for one test: SQLite in a temporary folder, or a MongoDB database of its
/// own (where `MONGODB_URI` is set) that is dropped afterwards.
pub struct TestStore {
    pub store: crate::docstore::DocumentStore,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// A fresh SQLite store with `schema` applied.
    ///
    /// # Panics
    /// When the temporary database cannot be created.
    pub async fn sqlite(schema: &crate::docstore::Schema) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = crate::docstore::SqliteDb::open(
            &dir.path().join("test.sqlite3"),
            schema.sqlite_migrations,
        )
        .await
        .expect("a test SQLite database");
        Self {
            store: crate::docstore::DocumentStore::Sqlite(db),
            _dir: Some(dir),
        }
    }

    /// A fresh MongoDB database with `schema`'s indexes, or `None` (said loudly) without
    /// `MONGODB_URI`.
    ///
    /// # Panics
    /// When `MONGODB_URI` is set but unusable.
    pub async fn mongodb(schema: &crate::docstore::Schema) -> Option<Self> {
        let uri = server_url("MONGODB_URI")?;
        let name = unique_name("holdfast_test").replace('-', "_");
        let db = crate::docstore::MongoDb::connect(&uri, &name, schema.mongo_indexes)
            .await
            .unwrap_or_else(|e| panic!("MONGODB_URI is set but unusable: {e}"));
        Some(Self {
            store: crate::docstore::DocumentStore::Mongo(db),
            _dir: None,
        })
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let crate::docstore::DocumentStore::Mongo(db) = &self.store {
            let database = db.database().clone();
            // Best effort: the test's runtime may already be shutting down.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { database.drop().await });
            }
        }
    }
}
