//! The MongoDB adapter of [`DeadLetterLog`]: a `dead_letters` collection keyed by record id.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use holdfast_common::bus::DeadLetter;
use holdfast_common::docstore::{MongoDb, StoreError, is_duplicate_key};
use mongodb::Collection;
use mongodb::bson::{Document, doc};
use serde::{Deserialize, Serialize};

use super::{After, DeadLetterLog, DeadLetterRecord, DeadLetterStatus};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeadLetterDocument {
    #[serde(rename = "_id")]
    id: String,
    queue: String,
    routing_key: String,
    reason: String,
    body: String,
    message_id: Option<String>,
    status: String,
    deaths: i64,
    dead_at: i64,
    redriven_at: Option<i64>,
}

impl From<&DeadLetterRecord> for DeadLetterDocument {
    fn from(r: &DeadLetterRecord) -> Self {
        Self {
            id: r.id.clone(),
            queue: r.letter.queue.clone(),
            routing_key: r.letter.routing_key.clone(),
            reason: r.letter.reason.clone(),
            body: r.letter.body.clone(),
            message_id: r.letter.message_id.clone(),
            status: r.status.as_str().into(),
            deaths: r.deaths.into(),
            dead_at: r.dead_at_ms,
            redriven_at: r.redriven_at_ms,
        }
    }
}

impl TryFrom<DeadLetterDocument> for DeadLetterRecord {
    type Error = StoreError;

    fn try_from(d: DeadLetterDocument) -> Result<Self, StoreError> {
        Ok(Self {
            status: DeadLetterStatus::parse(&d.status).ok_or_else(|| {
                StoreError::Corrupt(format!("dead letter {}: status {:?}", d.id, d.status))
            })?,
            id: d.id,
            letter: DeadLetter {
                queue: d.queue,
                routing_key: d.routing_key,
                reason: d.reason,
                body: d.body,
                message_id: d.message_id,
            },
            deaths: u32::try_from(d.deaths).unwrap_or(u32::MAX),
            dead_at_ms: d.dead_at,
            redriven_at_ms: d.redriven_at,
        })
    }
}

pub struct MongoDeadLetters {
    letters: Collection<DeadLetterDocument>,
}

impl MongoDeadLetters {
    pub fn new(db: &MongoDb) -> Self {
        Self {
            letters: db.database().collection("dead_letters"),
        }
    }
}

#[async_trait]
impl DeadLetterLog for MongoDeadLetters {
    async fn keep(&self, record: &DeadLetterRecord) -> Result<(), StoreError> {
        match self
            .letters
            .insert_one(DeadLetterDocument::from(record))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
        // Known: dead again if it had been re-driven; a waiting one stays as it is.
        self.letters
            .update_one(
                doc! { "_id": &record.id, "status": "REDRIVEN" },
                doc! {
                    "$set": {
                        "status": "WAITING",
                        "reason": &record.letter.reason,
                        "body": &record.letter.body,
                        "deadAt": record.dead_at_ms,
                        "redrivenAt": null,
                    },
                    "$inc": { "deaths": 1_i64 },
                },
            )
            .await?;
        Ok(())
    }

    async fn list(
        &self,
        status: Option<DeadLetterStatus>,
        after: Option<&After>,
        limit: usize,
    ) -> Result<Vec<DeadLetterRecord>, StoreError> {
        let mut filter = Document::new();
        if let Some(status) = status {
            filter.insert("status", status.as_str());
        }
        if let Some(after) = after {
            filter.insert(
                "$or",
                vec![
                    doc! { "deadAt": { "$lt": after.dead_at_ms } },
                    doc! { "deadAt": after.dead_at_ms, "_id": { "$lt": &after.id } },
                ],
            );
        }
        self.letters
            .find(filter)
            .sort(doc! { "deadAt": -1, "_id": -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .map(DeadLetterRecord::try_from)
            .collect()
    }

    async fn get(&self, id: &str) -> Result<Option<DeadLetterRecord>, StoreError> {
        self.letters
            .find_one(doc! { "_id": id })
            .await?
            .map(DeadLetterRecord::try_from)
            .transpose()
    }

    async fn mark_redriven(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let updated = self
            .letters
            .update_one(
                doc! { "_id": id, "status": "WAITING" },
                doc! { "$set": { "status": "REDRIVEN", "redrivenAt": now_ms } },
            )
            .await?;
        Ok(updated.modified_count == 1)
    }

    async fn waiting(&self) -> Result<u64, StoreError> {
        Ok(self
            .letters
            .count_documents(doc! { "status": "WAITING" })
            .await?)
    }
}
