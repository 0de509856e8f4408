//! The waitlist on SQLite: entries, and the line's counts kept with them (see `store::line`).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::rows::{WAITLIST_COLUMNS, read_entry};
use super::{SqliteOrders, insert_outbox};
use crate::domain::ids::{EventId, HoldId};
use crate::domain::waitlist::{Offer, Place, WaitlistEntry, WaitlistSummary};
use crate::store::{OutboxMessage, RepoError, WaitlistStore, first_in_line, line};

#[async_trait]
impl WaitlistStore for SqliteOrders {
    async fn join_waitlist(&self, entry: &WaitlistEntry) -> Result<bool, RepoError> {
        let entry = entry.clone();
        Ok(self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let on_it = tx
                    .query_row(
                        "SELECT 1 FROM waitlist WHERE event_id = ?1 AND user_id = ?2",
                        params![entry.event_id, entry.user_id],
                        |_| Ok(()),
                    )
                    .optional()?;
                if on_it.is_some() {
                    return Ok(false);
                }
                let seats = i64::try_from(entry.seats).unwrap_or(i64::MAX);
                let seq: i64 = tx.query_row(
                    "INSERT INTO waitlist_lines (event_id, next_seq, entries, seats) VALUES (?1, 2, 1, ?2) \
                     ON CONFLICT (event_id) DO UPDATE SET next_seq = next_seq + 1, \
                     entries = entries + 1, seats = seats + excluded.seats RETURNING next_seq - 1",
                    params![entry.event_id, seats],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO waitlist (event_id, user_id, seats, joined_at, email, seq) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        entry.event_id,
                        entry.user_id,
                        seats,
                        entry.joined_at_ms,
                        entry.email,
                        seq
                    ],
                )?;
                for (level, block) in line::blocks_of(u64::try_from(seq).unwrap_or(0)) {
                    tx.execute(
                        "INSERT INTO waitlist_blocks (event_id, level, block, entries) VALUES (?1, ?2, ?3, 1) \
                         ON CONFLICT (event_id, level, block) DO UPDATE SET entries = entries + 1",
                        params![entry.event_id, level, block_number(block)],
                    )?;
                }
                tx.commit()?;
                Ok(true)
            })
            .await?)
    }

    async fn waitlist_place(
        &self,
        event_id: &EventId,
        user_id: &str,
    ) -> Result<Option<Place>, RepoError> {
        let (event_id, user_id) = (event_id.to_string(), user_id.to_string());
        Ok(self
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                let Some(entry) = tx
                    .query_row(
                        &format!(
                            "SELECT {WAITLIST_COLUMNS} FROM waitlist WHERE event_id = ?1 AND user_id = ?2"
                        ),
                        params![event_id, user_id],
                        read_entry,
                    )
                    .optional()?
                else {
                    return Ok(None);
                };
                let mut before: i64 = 0;
                for (level, first, end) in line::ranges_before(entry.seq) {
                    let (first, end) = (block_number(first), block_number(end));
                    before += if level == 0 {
                        tx.prepare_cached(
                            "SELECT COUNT(*) FROM waitlist WHERE event_id = ?1 AND seq >= ?2 AND seq < ?3",
                        )?
                        .query_row(params![event_id, first, end], |r| r.get::<_, i64>(0))?
                    } else {
                        tx.prepare_cached(
                            "SELECT COALESCE(SUM(entries), 0) FROM waitlist_blocks \
                             WHERE event_id = ?1 AND level = ?2 AND block >= ?3 AND block < ?4",
                        )?
                        .query_row(params![event_id, level, first, end], |r| r.get::<_, i64>(0))?
                    };
                }
                let length: i64 = tx.query_row(
                    "SELECT entries FROM waitlist_lines WHERE event_id = ?1",
                    [&event_id],
                    |r| r.get(0),
                )?;
                Ok(Some(Place {
                    entry,
                    position: usize::try_from(before + 1).unwrap_or(1),
                    length: usize::try_from(length).unwrap_or(0),
                }))
            })
            .await?)
    }

    async fn leave_waitlist(
        &self,
        event_id: &EventId,
        user_id: &str,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        self.remove_from_waitlist(
            "user_id",
            event_id.to_string(),
            user_id.to_string(),
            announce.cloned(),
        )
        .await
    }

    async fn next_in_line(
        &self,
        event_id: &EventId,
        max_seats: usize,
        skip: &[String],
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let (event_id, skip) = (event_id.to_string(), skip.to_vec());
        let each = i64::try_from(limit + skip.len()).unwrap_or(i64::MAX);
        let entries = self
            .db
            .call(move |c| {
                // One indexed read per seats wanted: those who want more than is free are
                // never stepped over one by one.
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {WAITLIST_COLUMNS} FROM waitlist \
                     WHERE event_id = ?1 AND seats = ?2 AND offer_hold_id IS NULL ORDER BY seq LIMIT ?3"
                ))?;
                let mut entries = Vec::new();
                for seats in 1..=max_seats {
                    let seats = i64::try_from(seats).unwrap_or(i64::MAX);
                    for entry in statement.query_map(params![event_id, seats, each], read_entry)? {
                        entries.push(entry?);
                    }
                }
                Ok(entries)
            })
            .await?;
        Ok(first_in_line(entries, &skip, limit))
    }

    async fn oversized_entries(
        &self,
        event_id: &EventId,
        max_seats: usize,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let max_seats = i64::try_from(max_seats).unwrap_or(i64::MAX);
        self.entries_where(
            "seats > ?2 AND offer_hold_id IS NULL ORDER BY seats, seq",
            event_id,
            max_seats,
            limit,
        )
        .await
    }

    async fn offers_ended_before(
        &self,
        event_id: &EventId,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        self.entries_where(
            "offer_hold_id IS NOT NULL AND offer_until < ?2 ORDER BY offer_until",
            event_id,
            before_ms,
            limit,
        )
        .await
    }

    async fn has_offers(&self, event_id: &EventId) -> Result<bool, RepoError> {
        let event_id = event_id.to_string();
        Ok(self
            .db
            .call(move |c| {
                Ok(c.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM waitlist WHERE event_id = ?1 AND offer_hold_id IS NOT NULL)",
                )?
                .query_row([event_id], |r| r.get(0))?)
            })
            .await?)
    }

    async fn waitlist_summary(&self, event_id: &EventId) -> Result<WaitlistSummary, RepoError> {
        let event_id = event_id.to_string();
        Ok(self
            .db
            .call(move |c| {
                let (entries, seats) = c
                    .query_row(
                        "SELECT entries, seats FROM waitlist_lines WHERE event_id = ?1",
                        [&event_id],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                    )
                    .optional()?
                    .unwrap_or((0, 0));
                let offers: i64 = c.query_row(
                    "SELECT COUNT(*) FROM waitlist WHERE event_id = ?1 AND offer_hold_id IS NOT NULL",
                    [&event_id],
                    |r| r.get(0),
                )?;
                let count = |n: i64| usize::try_from(n).unwrap_or(0);
                Ok(WaitlistSummary {
                    entries: count(entries),
                    seats: count(seats),
                    offers: count(offers),
                })
            })
            .await?)
    }

    async fn record_offer(
        &self,
        event_id: &EventId,
        user_id: &str,
        offer: &Offer,
        announce: Option<&OutboxMessage>,
    ) -> Result<bool, RepoError> {
        let (event_id, user_id) = (event_id.to_string(), user_id.to_string());
        let (offer, announce) = (offer.clone(), announce.cloned());
        Ok(self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let updated = tx.execute(
                    "UPDATE waitlist SET offer_hold_id = ?3, offer_until = ?4 \
                     WHERE event_id = ?1 AND user_id = ?2 AND offer_hold_id IS NULL",
                    params![event_id, user_id, offer.hold_id, offer.until_ms],
                )?;
                if updated == 1
                    && let Some(message) = &announce
                {
                    insert_outbox(&tx, message)?;
                }
                tx.commit()?;
                Ok(updated == 1)
            })
            .await?)
    }

    async fn end_offer(
        &self,
        event_id: &EventId,
        hold_id: &HoldId,
        announce: Option<&OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        self.remove_from_waitlist(
            "offer_hold_id",
            event_id.to_string(),
            hold_id.to_string(),
            announce.cloned(),
        )
        .await
    }
}

/// A sequence or block number as SQLite stores it.
fn block_number(block: u64) -> i64 {
    i64::try_from(block).unwrap_or(i64::MAX)
}

impl SqliteOrders {
    /// Deletes the event's entry whose `column` (a fixed column name, never input) is `value`,
    /// takes it out of the line's counts and writes `announce`, in one transaction; the entry
    /// as it was.
    async fn remove_from_waitlist(
        &self,
        column: &'static str,
        event_id: String,
        value: String,
        announce: Option<OutboxMessage>,
    ) -> Result<Option<WaitlistEntry>, RepoError> {
        self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let removed = tx
                    .query_row(
                        &format!(
                            "DELETE FROM waitlist WHERE event_id = ?1 AND {column} = ?2 RETURNING {WAITLIST_COLUMNS}"
                        ),
                        params![event_id, value],
                        read_entry,
                    )
                    .optional()?;
                if let Some(entry) = &removed {
                    tx.execute(
                        "UPDATE waitlist_lines SET entries = entries - 1, seats = seats - ?2 WHERE event_id = ?1",
                        params![event_id, i64::try_from(entry.seats).unwrap_or(0)],
                    )?;
                    for (level, block) in line::blocks_of(entry.seq) {
                        let block = block_number(block);
                        tx.execute(
                            "UPDATE waitlist_blocks SET entries = entries - 1 \
                             WHERE event_id = ?1 AND level = ?2 AND block = ?3",
                            params![event_id, level, block],
                        )?;
                        tx.execute(
                            "DELETE FROM waitlist_blocks \
                             WHERE event_id = ?1 AND level = ?2 AND block = ?3 AND entries <= 0",
                            params![event_id, level, block],
                        )?;
                    }
                    if let Some(message) = &announce {
                        insert_outbox(&tx, message)?;
                    }
                }
                tx.commit()?;
                Ok(removed)
            })
            .await
    }

    /// The event's entries matching `filter` (fixed SQL, never input; `?2` is `value`), at
    /// most `limit`.
    async fn entries_where(
        &self,
        filter: &'static str,
        event_id: &EventId,
        value: i64,
        limit: usize,
    ) -> Result<Vec<WaitlistEntry>, RepoError> {
        let event_id = event_id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {WAITLIST_COLUMNS} FROM waitlist WHERE event_id = ?1 AND {filter} LIMIT ?3"
                ))?;
                let entries = statement
                    .query_map(params![event_id, value, limit], read_entry)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(entries)
            })
            .await
    }
}
