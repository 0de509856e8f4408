//! The waitlist on MongoDB: entries, and the line's counts kept with them (see `store::line`).

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::ClientSession;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::TRANSIENT_TRANSACTION_ERROR;
use mongodb::options::ReturnDocument;

use super::records::{WaitlistDocument, waitlist_id};
use super::{MongoOrders, TRANSACTION_ATTEMPTS, as_i64};
use crate::domain::ids::{EventId, HoldId};
use crate::domain::waitlist::{Offer, Place, WaitlistEntry, WaitlistSummary};
use crate::store::{OutboxMessage, RepoError, WaitlistStore, first_in_line, line};

#[async_trait]
impl WaitlistStore for MongoOrders {
    async fn join_waitlist(&self, entry: &WaitlistEntry) -> Result<bool, RepoError> {
        let id = waitlist_id(&entry.event_id, &entry.user_id);
        let on_it = || self.waitlist.find_one(doc! { "_id": &id });
        if on_it().await?.is_some() {
            return Ok(false);
        }
        let seats = i64::try_from(entry.seats).unwrap_or(i64::MAX);
        let joined = in_transaction!(self, |session| {
            async {
                let line = self
                    .waitlist_lines
                    .find_one_and_update(
                        doc! { "_id": &entry.event_id },
                        doc! { "$inc": { "nextSeq": 1_i64, "entries": 1_i64, "seats": seats } },
                    )
                    .upsert(true)
                    .return_document(ReturnDocument::After)
                    .session(&mut session)
                    .await?;
                let seq = line
                    .and_then(|l| l.get_i64("nextSeq").ok())
                    .unwrap_or_default();
                let document = WaitlistDocument {
                    id: id.clone(),
                    event_id: entry.event_id.clone(),
                    user_id: entry.user_id.clone(),
                    seats,
                    joined_at: entry.joined_at_ms,
                    email: entry.email.clone(),
                    offer_hold_id: None,
                    offer_until: None,
                    seq,
                };
                self.waitlist
                    .insert_one(document)
                    .session(&mut session)
                    .await?;
                self.count_in_blocks(&mut session, &entry.event_id, seq, 1)
                    .await?;
                Ok(true)
            }
            .await
        });
        match joined {
            // The same user joining twice at once: the other join won.
            Err(_) if on_it().await?.is_some() => Ok(false),
            joined => joined,
        }
    }

    async fn waitlist_place(
        &self,
        event_id: &EventId,
        user_id: &str,
    ) -> Result<Option<Place>, RepoError> {
        let Some(entry) = self
            .waitlist
            .find_one(doc! { "_id": waitlist_id(event_id, user_id) })
            .await?
            .map(WaitlistEntry::from)
        else {
            return Ok(None);
        };
        let mut before = 0_i64;
        let mut blocks = Vec::new();
        for (level, first, end) in line::ranges_before(entry.seq) {
            let (first, end) = (as_i64(first), as_i64(end));
            if level == 0 {
                let filter = doc! { "eventId": event_id, "seq": { "$gte": first, "$lt": end } };
                before += as_i64(self.waitlist.count_documents(filter).await?);
            } else {
                blocks.push(doc! { "level": level, "block": { "$gte": first, "$lt": end } });
            }
        }
        if !blocks.is_empty() {
            let counts: Vec<Document> = self
                .waitlist_blocks
                .find(doc! { "eventId": event_id, "$or": blocks })
                .projection(doc! { "entries": 1 })
                .await?
                .try_collect()
                .await?;
            before += counts.iter().map(entries_of).sum::<i64>();
        }
        let length = self
            .waitlist_lines
            .find_one(doc! { "_id": event_id })
            .await?
            .as_ref()
            .map_or(0, entries_of);
        Ok(Some(Place {
            entry,
            position: usize::try_from(before + 1).unwrap_or(1),
            length: usize::try_from(length).unwrap_or(0),
        }))
    }

    async fn leave_waitlist(
        &self,
        event_id: &EventId,
        user_id: &str,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        let filter = doc! { "_id": waitlist_id(event_id, user_id) };
        self.remove_from_waitlist(filter, announce).await
    }

    async fn next_in_line(
        &self,
        event_id: &EventId,
        max_seats: usize,
        skip: &[String],
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let mut entries = Vec::new();
        let each = as_i64(u64::try_from(limit + skip.len()).unwrap_or(u64::MAX));
        // One indexed read per seats wanted: those who want more than is free are never
        // stepped over one by one.
        for seats in 1..=max_seats {
            let filter = doc! {
                "eventId": event_id,
                "seats": as_i64(u64::try_from(seats).unwrap_or(u64::MAX)),
                "offerHoldId": Bson::Null,
            };
            entries.extend(
                self.entries_matching(filter, doc! { "seq": 1 }, each)
                    .await?,
            );
        }
        Ok(first_in_line(entries, skip, limit))
    }

    async fn oversized_entries(
        &self,
        event_id: &EventId,
        max_seats: usize,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let max_seats = as_i64(u64::try_from(max_seats).unwrap_or(u64::MAX));
        let filter = doc! {
            "eventId": event_id,
            "seats": { "$gt": max_seats },
            "offerHoldId": Bson::Null,
        };
        let limit = as_i64(u64::try_from(limit).unwrap_or(u64::MAX));
        self.entries_matching(filter, doc! { "seats": 1, "seq": 1 }, limit)
            .await
    }

    async fn offers_ended_before(
        &self,
        event_id: &EventId,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let filter = doc! { "eventId": event_id, "offerUntil": { "$lt": before_ms } };
        let limit = as_i64(u64::try_from(limit).unwrap_or(u64::MAX));
        self.entries_matching(filter, doc! { "offerUntil": 1 }, limit)
            .await
    }

    async fn has_offers(&self, event_id: &EventId) -> Result<bool, RepoError> {
        Ok(self.waitlist.find_one(offers_of(event_id)).await?.is_some())
    }

    async fn waitlist_summary(&self, event_id: &EventId) -> Result<WaitlistSummary, RepoError> {
        let line = self
            .waitlist_lines
            .find_one(doc! { "_id": event_id })
            .await?;
        let offers = self.waitlist.count_documents(offers_of(event_id)).await?;
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        Ok(WaitlistSummary {
            entries: count(line.as_ref().map_or(0, entries_of)),
            seats: count(
                line.as_ref()
                    .and_then(|l| l.get_i64("seats").ok())
                    .unwrap_or(0),
            ),
            offers: usize::try_from(offers).unwrap_or(0),
        })
    }

    async fn record_offer(
        &self,
        event_id: &EventId,
        user_id: &str,
        offer: &Offer,
        announce: Option<&OutboxMessage>,
    ) -> Result<bool, RepoError> {
        in_transaction!(self, |session| {
            let updated = self
                .waitlist
                .update_one(
                    doc! { "_id": waitlist_id(event_id, user_id), "offerHoldId": Bson::Null },
                    doc! { "$set": { "offerHoldId": &offer.hold_id, "offerUntil": offer.until_ms } },
                )
                .session(&mut session)
                .await;
            match (updated, announce) {
                (Ok(updated), Some(message)) if updated.modified_count == 1 => self
                    .write_outbox(&mut session, message)
                    .await
                    .map(|()| true),
                (Ok(updated), _) => Ok(updated.modified_count == 1),
                (Err(e), _) => Err(e),
            }
        })
    }

    async fn end_offer(
        &self,
        event_id: &EventId,
        hold_id: &HoldId,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        let filter = doc! { "eventId": event_id, "offerHoldId": hold_id };
        self.remove_from_waitlist(filter, announce).await
    }
}

impl MongoOrders {
    /// Adds `by` (1 or -1) to the count of every block holding `seq`, inside the session's
    /// transaction; blocks left empty go.
    async fn count_in_blocks(
        &self,
        session: &mut ClientSession,
        event_id: &EventId,
        seq: i64,
        by: i64,
    ) -> Result<(), mongodb::error::Error> {
        let seq = u64::try_from(seq).unwrap_or(0);
        for (level, block) in line::blocks_of(seq) {
            let block = as_i64(block);
            self.waitlist_blocks
                .update_one(
                    doc! { "_id": format!("{event_id}/{level}/{block}") },
                    doc! {
                        "$inc": { "entries": by },
                        "$setOnInsert": { "eventId": event_id, "level": level, "block": block },
                    },
                )
                .upsert(by > 0)
                .session(&mut *session)
                .await?;
        }
        if by < 0 {
            self.waitlist_blocks
                .delete_many(doc! { "eventId": event_id, "entries": { "$lte": 0_i64 } })
                .session(&mut *session)
                .await?;
        }
        Ok(())
    }

    /// Deletes the entry matching `filter`, takes it out of the line's counts and writes
    /// `announce`, in one transaction; the entry as it was.
    async fn remove_from_waitlist(
        &self,
        filter: Document,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        in_transaction!(self, |session| {
            async {
                let Some(entry) = self
                    .waitlist
                    .find_one_and_delete(filter.clone())
                    .session(&mut session)
                    .await?
                else {
                    return Ok(None);
                };
                self.waitlist_lines
                    .update_one(
                        doc! { "_id": &entry.event_id },
                        doc! { "$inc": { "entries": -1_i64, "seats": -entry.seats } },
                    )
                    .session(&mut session)
                    .await?;
                self.count_in_blocks(&mut session, &entry.event_id, entry.seq, -1)
                    .await?;
                if let Some(message) = announce {
                    self.write_outbox(&mut session, message).await?;
                }
                Ok(Some(WaitlistEntry::from(entry)))
            }
            .await
        })
    }

    /// Entries matching `filter` in `order`, at most `limit`.
    async fn entries_matching(
        &self,
        filter: Document,
        order: Document,
        limit: i64,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let documents: Vec<WaitlistDocument> = self
            .waitlist
            .find(filter)
            .sort(order)
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        Ok(documents.into_iter().map(WaitlistEntry::from).collect())
    }
}

/// The event's entries with an offer standing.
fn offers_of(event_id: &str) -> Document {
    doc! { "eventId": event_id, "offerHoldId": { "$type": "string" } }
}

/// The `entries` count of a line or block document.
fn entries_of(document: &Document) -> i64 {
    document.get_i64("entries").unwrap_or(0)
}
