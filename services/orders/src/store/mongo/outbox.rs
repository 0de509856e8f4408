//! The outbox on MongoDB.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};

use super::{MongoOrders, as_i64};
use crate::domain::now_millis;
use crate::store::{OutboxMessage, OutboxStore, RepoError};

fn outbox_message(d: &Document) -> Result<OutboxMessage, RepoError> {
    let field = |name: &str| {
        d.get_str(name)
            .map(str::to_string)
            .map_err(|_| RepoError::Corrupt(format!("outbox message without {name}")))
    };
    Ok(OutboxMessage {
        id: field("_id")?,
        routing_key: field("routingKey")?,
        payload: field("payload")?,
    })
}

#[async_trait]
impl OutboxStore for MongoOrders {
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, RepoError> {
        let documents: Vec<Document> = self
            .outbox
            .find(doc! { "sentAt": Bson::Null })
            .sort(doc! { "createdAt": 1 })
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        documents.iter().map(outbox_message).collect()
    }

    async fn claim_outbox(
        &self,
        limit: u32,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Vec<OutboxMessage>, RepoError> {
        let claimable = doc! {
            "sentAt": Bson::Null,
            "$or": [
                { "claimedUntil": { "$exists": false } },
                { "claimedUntil": Bson::Null },
                { "claimedUntil": { "$lt": now_ms } },
            ],
        };
        let candidates: Vec<Document> = self
            .outbox
            .find(claimable.clone())
            .sort(doc! { "createdAt": 1 })
            .projection(doc! { "_id": 1 })
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&Bson> = candidates.iter().filter_map(|d| d.get("_id")).collect();
        // This relay's mark on what it claims: of two relays updating the same candidates, each
        // message takes the mark of one (each document's update is atomic).
        let mark = uuid::Uuid::new_v4().to_string();
        let mut filter = claimable;
        filter.insert("_id", doc! { "$in": &ids });
        self.outbox
            .update_many(
                filter,
                doc! { "$set": { "claimedUntil": lease_until_ms, "claimedBy": &mark } },
            )
            .await?;
        let claimed: Vec<Document> = self
            .outbox
            .find(doc! { "_id": { "$in": &ids }, "claimedBy": &mark })
            .sort(doc! { "createdAt": 1 })
            .await?
            .try_collect()
            .await?;
        claimed.iter().map(outbox_message).collect()
    }

    async fn release_claims(&self, ids: &[String]) -> Result<(), RepoError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.outbox
            .update_many(
                doc! { "_id": { "$in": ids }, "sentAt": Bson::Null },
                doc! { "$set": { "claimedUntil": Bson::Null } },
            )
            .await?;
        Ok(())
    }

    async fn mark_sent(&self, id: &str) -> Result<(), RepoError> {
        self.outbox
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "sentAt": now_millis() } },
            )
            .await?;
        Ok(())
    }

    async fn prune_published(&self, sent_before_ms: i64, limit: usize) -> Result<usize, RepoError> {
        let limit = as_i64(u64::try_from(limit).unwrap_or(u64::MAX));
        let done: Vec<Document> = self
            .outbox
            .find(doc! { "sentAt": { "$lt": sent_before_ms } })
            .projection(doc! { "_id": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        if done.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&Bson> = done.iter().filter_map(|d| d.get("_id")).collect();
        let deleted = self
            .outbox
            .delete_many(doc! { "_id": { "$in": ids } })
            .await?;
        Ok(usize::try_from(deleted.deleted_count).unwrap_or(usize::MAX))
    }
}
