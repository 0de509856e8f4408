//! Helpers for tests that need a real server (Redis, RabbitMQ, MongoDB), and an SMTP server of
//! their own ([`smtp`]).
//!
//! A suite whose server variable is unset is skipped with a visible message, except under
//! `CI=true`, where skipping would hide a broken set-up and therefore fails (CI starts Redis,
//! RabbitMQ and a MongoDB-compatible server; see `.ci/run`).

pub mod smtp;

use std::io::Write;

/// The server URL in `var`, or `None` (after saying so) when the suite must be skipped.
///
/// # Panics
/// When `var` is unset and `CI=true`.
pub fn server_url(var: &str) -> Option<String> {
    if let Some(url) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        return Some(url);
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if in_ci {
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

/// A Redis store on the server (`REDIS_URL`) or the cluster (`REDIS_CLUSTER_URLS`: its seed
/// nodes, comma-separated) that `var` names, every key under `prefix`; `None` when
/// [`server_url`] says the suite is skipped.
///
/// # Panics
/// When the variable is set but the store cannot be reached.
pub async fn redis_store(var: &str, prefix: &str) -> Option<crate::kv::RedisStore> {
    let url = server_url(var)?;
    let store = if var == "REDIS_CLUSTER_URLS" {
        let seeds: Vec<String> = url.split(',').map(|s| s.trim().to_string()).collect();
        crate::kv::RedisStore::connect_cluster(&seeds, prefix).await
    } else {
        crate::kv::RedisStore::connect(&url, prefix).await
    };
    Some(store.unwrap_or_else(|e| panic!("{var}={url} is set but unusable: {e}")))
}

/// A name no other test run uses, for keys, queues and exchanges on shared servers.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A MongoDB database name (or prefix) no other test uses: letters, digits and `_` only.
pub fn unique_database_name(prefix: &str) -> String {
    unique_name(prefix).replace('-', "_")
}

/// Drops the MongoDB databases `names` and waits until they are gone.
///
/// Runs on a thread of its own with its own runtime and client, so it works from `Drop` while
/// the test's runtime is shutting down (a task spawned there might never run). Failures are
/// reported, not raised: cleaning up must not turn a passing test red.
pub fn drop_mongo_databases(uri: &str, names: Vec<String>) {
    let uri = uri.to_string();
    let dropped = std::thread::spawn(move || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let client = mongodb::Client::with_uri_str(&uri)
                .await
                .map_err(|e| e.to_string())?;
            for name in &names {
                client
                    .database(name)
                    .drop()
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
            }
            client.shutdown().await;
            Ok(())
        })
    })
    .join();
    if let Ok(Err(error)) | Err(error) = dropped.map_err(|_| "the thread panicked".to_string()) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "warning: test databases not dropped: {error}"
        );
    }
}

/// A document store for one test: SQLite in a temporary folder, or a MongoDB database of its
/// own (where `MONGODB_URI` is set) that is dropped afterwards.
pub struct TestStore {
    pub store: crate::docstore::Database,
    _dir: Option<tempfile::TempDir>,
    /// The server and database to drop afterwards, on MongoDB.
    mongo: Option<(String, String)>,
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
            store: crate::docstore::Database::Sqlite(db),
            _dir: Some(dir),
            mongo: None,
        }
    }

    /// A fresh MongoDB database with `schema`'s indexes, or `None` (said loudly) without
    /// `MONGODB_URI`.
    ///
    /// # Panics
    /// When `MONGODB_URI` is set but unusable.
    pub async fn mongodb(schema: &crate::docstore::Schema) -> Option<Self> {
        let uri = server_url("MONGODB_URI")?;
        let name = unique_database_name("holdfast_test");
        let db = crate::docstore::MongoDb::connect(&uri, &name, schema.mongo_indexes)
            .await
            .unwrap_or_else(|e| panic!("MONGODB_URI is set but unusable: {e}"));
        Some(Self {
            store: crate::docstore::Database::Mongo(db),
            _dir: None,
            mongo: Some((uri, name)),
        })
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some((uri, name)) = self.mongo.take() {
            drop_mongo_databases(&uri, vec![name]);
        }
    }
}

/// One contract suite, run against each adapter of a port.
///
/// `contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [test_a, test_b])`
/// makes a module per adapter (`sqlite_adapter`, …) with one test per name, each calling the suite's `test_x(repo)` with a fresh adapter from the
/// factory. The factory yields `Option<(adapter, guard)>`: `None` when the adapter's server is
/// not configured (see [`server_url`]), and the guard lives until the test ends (it removes what
/// the test created). Tests run on a multi-threaded runtime, so suites may race tasks.
#[macro_export]
macro_rules! contract_suite {
    ($($adapter:ident => $make:expr),+ ; $tests:tt) => {
        $( $crate::contract_suite!($adapter, $make, $tests); )+
    };
    ($adapter:ident, $make:expr, [$($test:ident),+ $(,)?]) => {
        mod $adapter {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some((repo, _guard)) = $make.await {
                        super::$test(repo).await
                    }
                }
            )+
        }
    };
}
