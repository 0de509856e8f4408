//! Check-in on MongoDB: each passage is one conditional update of the ticket's document
//! (atomic per document, so two gates at once cannot both let a ticket in); an offline
//! batch is reconciled passage by passage, each remembered under its scanner and nonce.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use holdfast_common::docstore::{StoreError, is_duplicate_key};
use mongodb::bson::{DateTime, Document, doc};
use mongodb::error::TRANSIENT_TRANSACTION_ERROR;
use serde::{Deserialize, Serialize};

use super::{MongoOrders, TRANSACTION_ATTEMPTS};
use crate::domain::checkin::{Device, Direction, Passage, PassageOutcome};
use crate::domain::ids::EventId;
use crate::domain::now_millis;
use crate::domain::ticket::{Ticket, TicketStatus};
use crate::store::{CheckinStore, RepoError};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeviceDocument {
    #[serde(rename = "_id")]
    device_id: String,
    event_id: EventId,
    name: String,
    secret_hash: String,
    created_by: String,
    created_at: i64,
    revoked: bool,
}

impl From<&Device> for DeviceDocument {
    fn from(d: &Device) -> Self {
        Self {
            device_id: d.device_id.clone(),
            event_id: d.event_id.clone(),
            name: d.name.clone(),
            secret_hash: d.secret_hash.clone(),
            created_by: d.created_by.clone(),
            created_at: d.created_at_ms,
            revoked: d.revoked,
        }
    }
}

impl From<DeviceDocument> for Device {
    fn from(d: DeviceDocument) -> Self {
        Self {
            device_id: d.device_id,
            event_id: d.event_id,
            name: d.name,
            secret_hash: d.secret_hash,
            created_by: d.created_by,
            created_at_ms: d.created_at,
            revoked: d.revoked,
        }
    }
}

/// The ticket's current pass, still valid: the filter every passage starts from.
fn current(p: &Passage) -> Document {
    doc! {
        "_id": &p.ticket_id,
        "eventId": &p.event_id,
        "version": i64::from(p.version),
        "secret": &p.secret,
        "status": TicketStatus::Valid.as_str(),
    }
}

fn with(mut filter: Document, more: Document) -> Document {
    filter.extend(more);
    filter
}

impl MongoOrders {
    /// Whether one conditional update matched.
    async fn update_ticket(&self, filter: Document, set: Document) -> Result<bool, StoreError> {
        let updated = self
            .tickets
            .update_one(filter, doc! { "$set": set })
            .await?;
        Ok(updated.matched_count == 1)
    }

    async fn nonce_outcome(&self, key: &str) -> Result<Option<PassageOutcome>, StoreError> {
        let Some(seen) = self.scan_nonces.find_one(doc! { "_id": key }).await? else {
            return Ok(None);
        };
        let outcome = seen
            .get_str("outcome")
            .ok()
            .and_then(|o| serde_json::from_str(o).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("scan nonce {key} has no outcome")))?;
        Ok(Some(outcome))
    }
}

#[async_trait]
impl CheckinStore for MongoOrders {
    async fn pass_door(&self, p: &Passage) -> Result<PassageOutcome, RepoError> {
        let now = now_millis();
        let entry =
            doc! { "enteredAt": p.at_ms, "entryGate": &p.gate, "inside": true, "changedAt": now };
        let changed = match (p.direction, p.earliest_wins) {
            (Direction::In, false) => {
                let first = with(current(p), doc! { "inside": false, "enteredAt": null });
                self.update_ticket(first, entry).await?
                    || (p.reentry
                        && self
                            .update_ticket(
                                with(
                                    current(p),
                                    doc! { "inside": false, "enteredAt": { "$ne": null } },
                                ),
                                doc! { "inside": true, "changedAt": now },
                            )
                            .await?)
            }
            (Direction::In, true) => {
                let later =
                    doc! { "$or": [{ "enteredAt": null }, { "enteredAt": { "$gt": p.at_ms } }] };
                self.update_ticket(with(current(p), later), entry).await?
            }
            (Direction::Out, _) => {
                self.update_ticket(
                    with(current(p), doc! { "inside": true }),
                    doc! { "inside": false, "changedAt": now },
                )
                .await?
            }
        };
        let ticket = self
            .tickets
            .find_one(doc! { "_id": &p.ticket_id })
            .await?
            .map(Ticket::from);
        Ok(PassageOutcome::after(p, changed, ticket.as_ref()))
    }

    async fn pass_door_batch(
        &self,
        scanner: &str,
        passages: &[(String, Passage)],
        expires_at_ms: i64,
    ) -> Result<Vec<PassageOutcome>, RepoError> {
        let mut outcomes = Vec::with_capacity(passages.len());
        for (nonce, passage) in passages {
            let key = format!("{scanner}/{nonce}");
            if let Some(seen) = self.nonce_outcome(&key).await? {
                outcomes.push(seen);
                continue;
            }
            // Recording the passage again (a crash before its nonce was kept) changes
            // nothing: the earliest entry stands either way.
            let outcome = self.pass_door(passage).await?;
            let record = doc! {
                "_id": &key,
                "outcome": serde_json::to_string(&outcome).unwrap_or_default(),
                "expiresAt": DateTime::from_millis(expires_at_ms),
            };
            match self.scan_nonces.insert_one(record).await {
                Ok(_) => outcomes.push(outcome),
                // The same batch reconciled at the same time elsewhere: its answer stands.
                Err(e) if is_duplicate_key(&e) => {
                    outcomes.push(self.nonce_outcome(&key).await?.unwrap_or(outcome));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(outcomes)
    }

    async fn prune_scan_nonces(&self, _now_ms: i64, _limit: usize) -> Result<usize, RepoError> {
        // The TTL index on `expiresAt` expires them.
        Ok(0)
    }

    async fn add_device(&self, device: &Device, max_per_event: usize) -> Result<bool, RepoError> {
        let max = u64::try_from(max_per_event).unwrap_or(u64::MAX);
        in_transaction!(self, |session| async {
            let active = self
                .devices
                .count_documents(doc! { "eventId": &device.event_id, "revoked": false })
                .session(&mut session)
                .await?;
            if active >= max {
                return Ok(false);
            }
            self.devices
                .insert_one(DeviceDocument::from(device))
                .session(&mut session)
                .await?;
            Ok(true)
        }
        .await)
    }

    async fn device(&self, device_id: &str) -> Result<Option<Device>, RepoError> {
        Ok(self
            .devices
            .find_one(doc! { "_id": device_id })
            .await?
            .map(Device::from))
    }

    async fn devices_of(&self, event_id: &EventId) -> Result<Vec<Device>, RepoError> {
        let documents: Vec<DeviceDocument> = self
            .devices
            .find(doc! { "eventId": event_id })
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(Device::from).collect())
    }

    async fn revoke_device(&self, event_id: &EventId, device_id: &str) -> Result<bool, RepoError> {
        let updated = self
            .devices
            .update_one(
                doc! { "_id": device_id, "eventId": event_id, "revoked": false },
                doc! { "$set": { "revoked": true } },
            )
            .await?;
        Ok(updated.modified_count == 1)
    }
}
