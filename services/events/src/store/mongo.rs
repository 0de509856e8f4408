//! The MongoDB adapter of [`EventRepository`]: collection `events`, with indexes on the date,
//! the tags and the search words.
//!
//! Text search has the semantics of the SQLite adapter (see [`super`]): every word of the query
//! must begin a word of the title or description. Each document carries `searchWords`, the
//! lower-cased words of its title and description, under an ordinary multikey index; a query
//! word becomes an anchored prefix regex on it, which the index answers as a range scan. This
//! needs no text index, so it behaves the same on every server speaking the MongoDB protocol.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use holdfast_common::docstore::MongoDb;
use mongodb::Collection;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Document, doc};
use serde::{Deserialize, Serialize};

use super::{EventQuery, EventRepository, RepoError, search_terms, searchable_words};
use crate::domain::event::Event;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventDocument {
    #[serde(rename = "_id")]
    id: ObjectId,
    title: String,
    description: Option<String>,
    date: String,
    date_ms: i64,
    location: Option<String>,
    tags: Vec<String>,
    image_url: Option<String>,
    organizer_id: String,
    rows: u32,
    seats_per_row: u32,
    price_minor: i64,
    currency: String,
    /// Absent on documents written before events had a zone: UTC, as they were read.
    #[serde(default = "default_time_zone")]
    timezone: String,
    /// The venue layout as JSON text (absent: a grid). Text, so that category prices keep
    /// their decimal form exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    venue: Option<String>,
    /// The words of title and description, for search; absent on documents written before it
    /// existed (filled in at start-up by [`MongoEvents::open`]).
    #[serde(default)]
    search_words: Vec<String>,
}

fn default_time_zone() -> String {
    holdfast_common::when::DEFAULT_TIME_ZONE.into()
}

impl EventDocument {
    fn from_event(e: &Event) -> Result<Self, RepoError> {
        Ok(Self {
            id: ObjectId::parse_str(&e.id)
                .map_err(|err| RepoError::Corrupt(format!("event id {}: {err}", e.id)))?,
            title: e.title.clone(),
            description: e.description.clone(),
            date: e.date.clone(),
            date_ms: e.date_ms,
            location: e.location.clone(),
            tags: e.tags.clone(),
            image_url: e.image_url.clone(),
            organizer_id: e.organizer_id.clone(),
            rows: e.rows,
            seats_per_row: e.seats_per_row,
            price_minor: e.price_minor,
            currency: e.currency.clone(),
            timezone: e.timezone.clone(),
            venue: e
                .venue
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|err| RepoError::Corrupt(format!("venue of {}: {err}", e.id)))?,
            search_words: searchable_words(e),
        })
    }

    fn into_event(self) -> Result<Event, RepoError> {
        let id = self.id.to_hex();
        let venue = self
            .venue
            .map(|venue| serde_json::from_str(&venue))
            .transpose()
            .map_err(|e| RepoError::Corrupt(format!("venue of {id}: {e}")))?;
        Ok(Event {
            id,
            title: self.title,
            description: self.description,
            date: self.date,
            date_ms: self.date_ms,
            location: self.location,
            tags: self.tags,
            image_url: self.image_url,
            organizer_id: self.organizer_id,
            rows: self.rows,
            seats_per_row: self.seats_per_row,
            price_minor: self.price_minor,
            currency: self.currency,
            timezone: self.timezone,
            venue,
        })
    }
}

pub struct MongoEvents {
    events: Collection<EventDocument>,
}

impl MongoEvents {
    /// The adapter over `db`, after giving `searchWords` to any event stored without them.
    pub async fn open(db: &MongoDb) -> Result<Self, RepoError> {
        let adapter = Self {
            events: db.database().collection("events"),
        };
        let filled = adapter.fill_missing_search_words().await?;
        tracing::info!(
            filled,
            "event search: word-prefix match on the indexed searchWords field"
        );
        Ok(adapter)
    }

    /// Writes `searchWords` on documents that lack it; idempotent, so replicas starting
    /// together at most repeat each other's work.
    async fn fill_missing_search_words(&self) -> Result<u64, RepoError> {
        let mut missing = self
            .events
            .find(doc! { "searchWords": { "$exists": false } })
            .await?;
        let mut filled = 0;
        while let Some(document) = missing.try_next().await? {
            let id = document.id;
            let words = searchable_words(&document.into_event()?);
            self.events
                .update_one(
                    doc! { "_id": id },
                    doc! { "$set": { "searchWords": words } },
                )
                .await?;
            filled += 1;
        }
        Ok(filled)
    }
}

fn object_id(id: &str) -> Option<ObjectId> {
    ObjectId::parse_str(id).ok()
}

/// The filter of a query.
fn filter(query: &EventQuery) -> Document {
    let mut filter = Document::new();
    if let Some(text) = &query.text {
        let every_word: Vec<Document> = search_terms(text)
            .iter()
            .map(|term| {
                doc! { "searchWords": { "$regex": format!("^{}", regex_escape(term)) } }
            })
            .collect();
        if !every_word.is_empty() {
            filter.insert("$and", every_word);
        }
    }
    if let Some(tag) = &query.tag {
        // Case-insensitive exact match of one array element. Written with the `$regex`
        // operator: some servers mis-answer a bare regex value on an indexed array field.
        let pattern = format!("^{}$", regex_escape(tag));
        filter.insert("tags", doc! { "$regex": pattern, "$options": "i" });
    }
    let mut range = Document::new();
    if let Some(from) = query.from_ms {
        range.insert("$gte", from);
    }
    if let Some(to) = query.to_ms {
        range.insert("$lte", to);
    }
    if !range.is_empty() {
        filter.insert("dateMs", range);
    }
    filter
}

fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[async_trait]
impl EventRepository for MongoEvents {
    async fn insert(&self, event: &Event) -> Result<(), RepoError> {
        self.events
            .insert_one(EventDocument::from_event(event)?)
            .await?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Event>, RepoError> {
        let Some(oid) = object_id(id) else {
            return Ok(None);
        };
        Ok(self
            .events
            .find_one(doc! { "_id": oid })
            .await?
            .map(EventDocument::into_event)
            .transpose()?)
    }

    async fn update(&self, event: &Event) -> Result<bool, RepoError> {
        let document = EventDocument::from_event(event)?;
        let result = self
            .events
            .replace_one(doc! { "_id": document.id }, &document)
            .await?;
        Ok(result.matched_count > 0)
    }

    async fn delete(&self, id: &str) -> Result<bool, RepoError> {
        let Some(oid) = object_id(id) else {
            return Ok(false);
        };
        Ok(self
            .events
            .delete_one(doc! { "_id": oid })
            .await?
            .deleted_count
            > 0)
    }

    async fn search(&self, query: &EventQuery) -> Result<(Vec<Event>, u64), RepoError> {
        let filter = filter(query);
        let total = self.events.count_documents(filter.clone()).await?;
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let documents: Vec<EventDocument> = self
            .events
            .find(filter)
            .sort(doc! { "dateMs": 1, "_id": 1 })
            .skip(query.offset)
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        let events = documents
            .into_iter()
            .map(EventDocument::into_event)
            .collect::<Result<_, _>>()?;
        Ok((events, total))
    }

    async fn count(&self) -> Result<u64, RepoError> {
        Ok(self.events.count_documents(doc! {}).await?)
    }
}
