//! The SQLite adapter of [`EventRepository`], with FTS5 for text search.

use async_trait::async_trait;
use holdfast_common::docstore::SqliteDb;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};

use super::{EventQuery, EventRepository, RepoError, search_terms};
use crate::domain::event::Event;

pub struct SqliteEvents {
    db: SqliteDb,
}

impl SqliteEvents {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

const COLUMNS: &str = "id, title, description, date, date_ms, location, tags, image_url, \
                       organizer_id, rows, seats_per_row, price_minor, currency, timezone, venue";

/// An event with its JSON columns (tags, venue) still as text.
type StoredRow = (Event, String, Option<String>);

fn read(row: &Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok((
        Event {
            id: row.get(0)?,
            title: row.get(1)?,
            description: row.get(2)?,
            date: row.get(3)?,
            date_ms: row.get(4)?,
            location: row.get(5)?,
            tags: Vec::new(),
            image_url: row.get(7)?,
            organizer_id: row.get(8)?,
            rows: row.get(9)?,
            seats_per_row: row.get(10)?,
            price_minor: row.get(11)?,
            currency: row.get(12)?,
            timezone: row.get(13)?,
            venue: None,
        },
        row.get(6)?,
        row.get(14)?,
    ))
}

fn with_tags((mut event, tags, venue): StoredRow) -> Result<Event, RepoError> {
    event.tags = serde_json::from_str(&tags)
        .map_err(|e| RepoError::Corrupt(format!("tags of {}: {e}", event.id)))?;
    event.venue = venue
        .map(|venue| serde_json::from_str(&venue))
        .transpose()
        .map_err(|e| RepoError::Corrupt(format!("venue of {}: {e}", event.id)))?;
    Ok(event)
}

fn tags_json(event: &Event) -> String {
    serde_json::to_string(&event.tags).unwrap_or_else(|_| "[]".into())
}

fn venue_json(event: &Event) -> Option<String> {
    event
        .venue
        .as_ref()
        .and_then(|venue| serde_json::to_string(venue).ok())
}

#[async_trait]
impl EventRepository for SqliteEvents {
    async fn insert(&self, event: &Event) -> Result<(), RepoError> {
        let e = event.clone();
        self.db
            .call(move |c| {
                c.execute(
                    &format!("INSERT INTO events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
                    params![
                        e.id, e.title, e.description, e.date, e.date_ms, e.location, tags_json(&e),
                        e.image_url, e.organizer_id, e.rows, e.seats_per_row, e.price_minor, e.currency,
                        e.timezone, venue_json(&e)
                    ],
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Event>, RepoError> {
        let id = id.to_string();
        let row = self
            .db
            .call(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {COLUMNS} FROM events WHERE id = ?1"),
                    [id],
                    read,
                )
                .optional()?)
            })
            .await?;
        row.map(with_tags).transpose()
    }

    async fn update(&self, event: &Event) -> Result<bool, RepoError> {
        let e = event.clone();
        let changed = self
            .db
            .call(move |c| {
                Ok(c.execute(
                    "UPDATE events SET title = ?2, description = ?3, date = ?4, date_ms = ?5, location = ?6, \
                     tags = ?7, image_url = ?8, organizer_id = ?9, rows = ?10, seats_per_row = ?11, \
                     price_minor = ?12, currency = ?13, timezone = ?14, venue = ?15 WHERE id = ?1",
                    params![
                        e.id, e.title, e.description, e.date, e.date_ms, e.location, tags_json(&e),
                        e.image_url, e.organizer_id, e.rows, e.seats_per_row, e.price_minor, e.currency,
                        e.timezone, venue_json(&e)
                    ],
                )?)
            })
            .await?;
        Ok(changed > 0)
    }

    async fn delete(&self, id: &str) -> Result<bool, RepoError> {
        let id = id.to_string();
        let deleted = self
            .db
            .call(move |c| Ok(c.execute("DELETE FROM events WHERE id = ?1", [id])?))
            .await?;
        Ok(deleted > 0)
    }

    async fn search(&self, query: &EventQuery) -> Result<(Vec<Event>, u64), RepoError> {
        let mut conditions: Vec<&str> = Vec::new();
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(text) = &query.text {
            let terms = search_terms(text);
            if !terms.is_empty() {
                // Each word quoted (no FTS syntax gets through) and matched as a prefix.
                let fts: Vec<String> = terms.iter().map(|t| format!("\"{t}\"*")).collect();
                conditions.push("rowid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)");
                args.push(SqlValue::Text(fts.join(" ")));
            }
        }
        if let Some(tag) = &query.tag {
            conditions.push("EXISTS (SELECT 1 FROM json_each(events.tags) WHERE lower(json_each.value) = lower(?))");
            args.push(SqlValue::Text(tag.clone()));
        }
        if let Some(from) = query.from_ms {
            conditions.push("date_ms >= ?");
            args.push(SqlValue::Integer(from));
        }
        if let Some(to) = query.to_ms {
            conditions.push("date_ms <= ?");
            args.push(SqlValue::Integer(to));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        let (rows, total) = self
            .db
            .call(move |c| {
                let total: i64 = c.query_row(
                    &format!("SELECT count(*) FROM events {filter}"),
                    params_from_iter(args.iter()),
                    |r| r.get(0),
                )?;
                let mut page_args = args;
                page_args.push(SqlValue::Integer(limit));
                page_args.push(SqlValue::Integer(offset));
                let mut statement = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM events {filter} ORDER BY date_ms, id LIMIT ? OFFSET ?"
                ))?;
                let rows = statement
                    .query_map(params_from_iter(page_args.iter()), read)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((rows, total))
            })
            .await?;
        let events = rows
            .into_iter()
            .map(with_tags)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((events, u64::try_from(total).unwrap_or(0)))
    }

    async fn count(&self) -> Result<u64, RepoError> {
        let n: i64 = self
            .db
            .call(|c| Ok(c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?))
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
