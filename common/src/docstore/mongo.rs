//! MongoDB plumbing for the distributed profile (`MONGODB_URI`).
//!
//! One database per service; the indexes a service declares are created at start-up
//! (`createIndexes` is a no-op for an index that already exists with the same definition).
//! Transactions need a replica set; docker-compose runs a single-node one.

use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use mongodb::{Client, Database, IndexModel};

use super::{IndexOrder, IndexSpec, StoreError};

/// A connected MongoDB database; cheap to clone.
#[derive(Clone)]
pub struct MongoDb {
    client: Client,
    database: Database,
}

impl MongoDb {
    /// Connects, checks the server answers, and creates `indexes`.
    pub async fn connect(
        uri: &str,
        database: &str,
        indexes: &[IndexSpec],
    ) -> Result<Self, StoreError> {
        let client = Client::with_uri_str(uri).await?;
        let db = Self {
            database: client.database(database),
            client,
        };
        db.ping().await?;
        for spec in indexes {
            db.database
                .collection::<Document>(spec.collection)
                .create_index(index_model(spec))
                .await?;
        }
        Ok(db)
    }

    /// The client, for sessions and transactions.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.database.run_command(doc! { "ping": 1 }).await?;
        Ok(())
    }
}

/// MongoDB's code for a write that a unique index refused.
const DUPLICATE_KEY: i32 = 11000;

/// The driver's message and code for `error`, without the raw server reply (BSON, shown as
/// bytes) that the driver's own `Display` appends: what a person reading a start-up failure
/// or a log line needs.
pub fn describe(error: &mongodb::error::Error) -> String {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => format!(
            "write failed: error code {} ({}): {}",
            e.code,
            e.code_name.as_deref().unwrap_or("unnamed"),
            e.message
        ),
        kind => kind.to_string(),
    }
}

/// Whether `error` is a write refused by a unique index (a document with that key exists).
pub fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    matches!(
        error.kind.as_ref(),
        ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == DUPLICATE_KEY
    )
}

fn index_model(spec: &IndexSpec) -> IndexModel {
    let mut keys = Document::new();
    let mut expire_after = None;
    for (field, order) in spec.keys {
        let value = match order {
            IndexOrder::Ascending => Bson::Int32(1),
            IndexOrder::Descending => Bson::Int32(-1),
            IndexOrder::ExpiresAt => {
                expire_after = Some(std::time::Duration::ZERO);
                Bson::Int32(1)
            }
        };
        keys.insert(*field, value);
    }
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .name(spec.name.to_string())
                .unique(spec.unique)
                .expire_after(expire_after)
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{drop_mongo_databases, server_url, unique_database_name};

    const INDEXES: &[IndexSpec] = &[
        IndexSpec {
            collection: "items",
            name: "items_by_date",
            keys: &[("date", IndexOrder::Ascending)],
            unique: false,
        },
        IndexSpec {
            collection: "items",
            name: "items_unique_code",
            keys: &[("code", IndexOrder::Ascending)],
            unique: true,
        },
    ];

    #[test]
    fn index_models_carry_name_keys_and_uniqueness() {
        let model = index_model(&INDEXES[1]);
        assert_eq!(model.keys, doc! { "code": 1 });
        let options = model.options.expect("options set");
        assert_eq!(options.name.as_deref(), Some("items_unique_code"));
        assert_eq!(options.unique, Some(true));
    }

    #[test]
    fn an_expiry_index_removes_documents_at_their_date() {
        let spec = IndexSpec {
            collection: "records",
            name: "records_expiry",
            keys: &[("expiresAt", IndexOrder::ExpiresAt)],
            unique: false,
        };
        let model = index_model(&spec);
        assert_eq!(model.keys, doc! { "expiresAt": 1 });
        let options = model.options.expect("options set");
        assert_eq!(options.expire_after, Some(std::time::Duration::ZERO));
        assert_eq!(index_model(&INDEXES[0]).options.unwrap().expire_after, None);
    }

    /// A server error reads as the driver's message and code, not as the raw reply's bytes.
    #[tokio::test]
    async fn server_errors_read_as_their_message_and_code() {
        let Some(uri) = server_url("MONGODB_URI") else {
            return;
        };
        let name = unique_database_name("holdfast_test");
        let db = MongoDb::connect(&uri, &name, &[]).await.unwrap();
        let refused = db
            .database()
            .run_command(doc! { "noSuchCommandAnywhere": 1 })
            .await
            .unwrap_err();
        let shown = StoreError::from(refused).to_string();
        assert!(
            shown.starts_with("mongodb: Command failed: Error code "),
            "{shown}"
        );
        assert!(
            !shown.contains("RawDocumentBuf") && !shown.contains("server response"),
            "{shown}"
        );
        drop_mongo_databases(&uri, vec![name]);
    }

    /// Restarts and replicas starting together create the same indexes: none of them fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn creating_the_indexes_is_idempotent_across_restarts_and_replicas() {
        let Some(uri) = server_url("MONGODB_URI") else {
            return;
        };
        let name = unique_database_name("holdfast_test");
        let replicas = (0..3).map(|_| MongoDb::connect(&uri, &name, INDEXES));
        for replica in futures_util::future::join_all(replicas).await {
            replica.expect("a replica starting beside others");
        }
        let restarted = MongoDb::connect(&uri, &name, INDEXES).await.unwrap();
        let names = restarted
            .database()
            .collection::<Document>("items")
            .list_index_names()
            .await
            .unwrap();
        assert!(names.contains(&"items_by_date".to_string()), "{names:?}");
        assert!(
            names.contains(&"items_unique_code".to_string()),
            "{names:?}"
        );
        drop_mongo_databases(&uri, vec![name]);
    }
}
