//! MongoDB plumbing for the distributed profile (`MONGODB_URI`).
//!
//! One database per service; the indexes a service declares are created at start-up
//! (`createIndexes` is a no-op for an index that already exists with the same definition).
//! Transactions need a replica set; docker-compose runs a single-node one.

use mongodb::bson::{Bson, Document, doc};
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

fn index_model(spec: &IndexSpec) -> IndexModel {
    let mut keys = Document::new();
    for (field, order) in spec.keys {
        let value = match order {
            IndexOrder::Ascending => Bson::Int32(1),
            IndexOrder::Descending => Bson::Int32(-1),
            IndexOrder::Text => Bson::String("text".into()),
        };
        keys.insert(*field, value);
    }
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .name(spec.name.to_string())
                .unique(spec.unique)
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{server_url, unique_name};

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

    #[tokio::test]
    async fn connect_creates_the_declared_indexes() {
        let Some(uri) = server_url("MONGODB_URI") else {
            return;
        };
        let name = unique_name("holdfast_test").replace('-', "_");
        let db = MongoDb::connect(&uri, &name, INDEXES).await.unwrap();
        // Connecting again must not fail on the existing indexes.
        let db_again = MongoDb::connect(&uri, &name, INDEXES).await.unwrap();
        let names = db_again
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
        db.database().drop().await.unwrap();
    }
}
