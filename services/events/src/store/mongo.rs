//! The MongoDB adapter of [`EventRepository`]: collection `events`, with indexes on the date,
//! the tags, and a text index over title and description.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use holdfast_common::docstore::MongoDb;
use mongodb::Collection;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Document, Regex, doc};
use serde::{Deserialize, Serialize};

use super::{EventQuery, EventRepository, RepoError, search_terms};
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
        })
    }

    fn into_event(self) -> Event {
        Event {
            id: self.id.to_hex(),
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
        }
    }
}

pub struct MongoEvents {
    events: Collection<EventDocument>,
}

impl MongoEvents {
    pub fn new(db: &MongoDb) -> Self {
        Self {
            events: db.database().collection("events"),
        }
    }
}

fn object_id(id: &str) -> Option<ObjectId> {
    ObjectId::parse_str(id).ok()
}

/// The filter of a query.
fn filter(query: &EventQuery) -> Document {
    let mut filter = Document::new();
    if let Some(text) = &query.text {
        let terms = search_terms(text);
        if !terms.is_empty() {
            filter.insert("$text", doc! { "$search": terms.join(" ") });
        }
    }
    if let Some(tag) = &query.tag {
        // Case-insensitive exact match of one array element.
        let pattern = format!("^{}$", regex_escape(tag));
        filter.insert(
            "tags",
            Regex {
                pattern,
                options: "i".into(),
            },
        );
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
            .map(EventDocument::into_event))
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
        Ok((
            documents
                .into_iter()
                .map(EventDocument::into_event)
                .collect(),
            total,
        ))
    }

    async fn count(&self) -> Result<u64, RepoError> {
        Ok(self.events.count_documents(doc! {}).await?)
    }
}
