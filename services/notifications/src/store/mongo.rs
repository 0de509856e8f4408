//! The MongoDB adapter of [`DeliveryLog`]: a `deliveries` collection keyed by message id.
//! Each claim is one `findOneAndUpdate`, atomic per document, so concurrent senders split the
//! due records between them.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use holdfast_common::docstore::{MongoDb, StoreError, is_duplicate_key};
use mongodb::Collection;
use mongodb::bson::doc;
use mongodb::options::ReturnDocument;
use serde::{Deserialize, Serialize};

use super::{Delivery, DeliveryLog, DeliveryStatus};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryDocument {
    #[serde(rename = "_id")]
    message_id: String,
    routing_key: String,
    recipient: String,
    subject: String,
    body: String,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    attachments: Vec<crate::compose::Attachment>,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

impl From<&Delivery> for DeliveryDocument {
    fn from(d: &Delivery) -> Self {
        Self {
            message_id: d.message_id.clone(),
            routing_key: d.routing_key.clone(),
            recipient: d.recipient.clone(),
            subject: d.subject.clone(),
            body: d.body.clone(),
            html: d.html.clone(),
            attachments: d.attachments.clone(),
            status: d.status.as_str().into(),
            attempts: d.attempts.into(),
            next_attempt_at: d.next_attempt_at_ms,
            last_error: d.last_error.clone(),
            created_at: d.created_at_ms,
            sent_at: d.sent_at_ms,
        }
    }
}

impl TryFrom<DeliveryDocument> for Delivery {
    type Error = StoreError;

    fn try_from(d: DeliveryDocument) -> Result<Self, StoreError> {
        Ok(Self {
            status: DeliveryStatus::parse(&d.status).ok_or_else(|| {
                StoreError::Corrupt(format!("delivery {}: status {:?}", d.message_id, d.status))
            })?,
            message_id: d.message_id,
            routing_key: d.routing_key,
            recipient: d.recipient,
            subject: d.subject,
            body: d.body,
            html: d.html,
            attachments: d.attachments,
            attempts: u32::try_from(d.attempts).unwrap_or(u32::MAX),
            next_attempt_at_ms: d.next_attempt_at,
            last_error: d.last_error,
            created_at_ms: d.created_at,
            sent_at_ms: d.sent_at,
        })
    }
}

pub struct MongoDeliveries {
    deliveries: Collection<DeliveryDocument>,
}

impl MongoDeliveries {
    pub fn new(db: &MongoDb) -> Self {
        Self {
            deliveries: db.database().collection("deliveries"),
        }
    }
}

const DUE: [&str; 2] = ["PENDING", "SENDING"];

#[async_trait]
impl DeliveryLog for MongoDeliveries {
    async fn record(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        match self
            .deliveries
            .insert_one(DeliveryDocument::from(delivery))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut claimed = Vec::new();
        while claimed.len() < limit {
            let next = self
                .deliveries
                .find_one_and_update(
                    doc! { "status": { "$in": DUE.as_slice() }, "nextAttemptAt": { "$lte": now_ms } },
                    doc! {
                        "$set": { "status": "SENDING", "nextAttemptAt": lease_until_ms },
                        "$inc": { "attempts": 1_i64 },
                    },
                )
                .sort(doc! { "nextAttemptAt": 1 })
                .return_document(ReturnDocument::After)
                .await?;
            match next {
                Some(document) => claimed.push(Delivery::try_from(document)?),
                None => break,
            }
        }
        Ok(claimed)
    }

    async fn mark_sent(
        &self,
        message_id: &str,
        attempt: u32,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.deliveries
            .update_one(
                doc! { "_id": message_id, "status": "SENDING", "attempts": i64::from(attempt) },
                doc! { "$set": { "status": "SENT", "sentAt": now_ms, "lastError": null } },
            )
            .await?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        message_id: &str,
        attempt: u32,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let set = match retry_at_ms {
            Some(at) => doc! { "status": "PENDING", "lastError": error, "nextAttemptAt": at },
            None => doc! { "status": "DEAD", "lastError": error },
        };
        self.deliveries
            .update_one(
                doc! { "_id": message_id, "status": "SENDING", "attempts": i64::from(attempt) },
                doc! { "$set": set },
            )
            .await?;
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let soonest = self
            .deliveries
            .find_one(doc! { "status": { "$in": DUE.as_slice() } })
            .sort(doc! { "nextAttemptAt": 1 })
            .await?;
        Ok(soonest.map(|d| d.next_attempt_at))
    }

    async fn dead(
        &self,
        before_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let before_ms = before_ms.unwrap_or(i64::MAX);
        self.deliveries
            .find(doc! { "status": "DEAD", "createdAt": { "$lt": before_ms } })
            .sort(doc! { "createdAt": -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .map(Delivery::try_from)
            .collect()
    }

    async fn revive(&self, message_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let updated = self
            .deliveries
            .update_one(
                doc! { "_id": message_id, "status": "DEAD" },
                doc! { "$set": { "status": "PENDING", "attempts": 0_i64, "nextAttemptAt": now_ms } },
            )
            .await?;
        Ok(updated.modified_count == 1)
    }

    async fn get(&self, message_id: &str) -> Result<Option<Delivery>, StoreError> {
        self.deliveries
            .find_one(doc! { "_id": message_id })
            .await?
            .map(Delivery::try_from)
            .transpose()
    }

    async fn prune(&self, finished_before_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let finished = doc! {
            "status": { "$in": ["SENT", "DEAD"] },
            "createdAt": { "$lt": finished_before_ms },
        };
        let ids: Vec<String> = self
            .deliveries
            .find(finished)
            .limit(limit)
            .await?
            .try_collect::<Vec<DeliveryDocument>>()
            .await?
            .into_iter()
            .map(|d| d.message_id)
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let deleted = self
            .deliveries
            .delete_many(doc! { "_id": { "$in": ids } })
            .await?;
        Ok(usize::try_from(deleted.deleted_count).unwrap_or(usize::MAX))
    }
}
