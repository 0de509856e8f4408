//! The recommendation model: derived entirely from bus messages and the event catalog, so it
//! can be rebuilt at any time and needs no store of its own.
//!
//! - Catalog: every known event with its tags and date (`event.created|updated|deleted`, and the
//!   events service's list at start-up).
//! - Purchases: who bought which event (`order.purchased`).
//!
//! Scores, for events that have not happened yet and that the user has not bought:
//! shared tags with what the user bought (×3 each), events bought by people who bought the same
//! events (×2 each), and overall popularity (×1 per buyer); ties go to the sooner event. A user
//! with no purchases gets the most popular upcoming events. "Related" ranks other upcoming
//! events by shared tags and shared buyers the same way.
//!
//! Messages are applied idempotently: a redelivered message id is ignored.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::RwLock;

use holdfast_common::bus::BusMessage;
use holdfast_common::messages::{
    DecodeError, EventCreated, EventDeleted, EventDetails, EventUpdated, Message, OrderPurchased,
};
use holdfast_common::when;

/// How many recent message ids are remembered for de-duplication.
const SEEN_CAPACITY: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct EventInfo {
    tags: HashSet<String>,
    date_ms: i64,
}

#[derive(Default)]
struct Inner {
    events: HashMap<String, EventInfo>,
    bought_by_user: HashMap<String, HashSet<String>>,
    buyers_of_event: HashMap<String, HashSet<String>>,
    seen: HashSet<uuid::Uuid>,
    seen_order: VecDeque<uuid::Uuid>,
}

#[derive(Default)]
pub struct Model {
    inner: RwLock<Inner>,
}

/// The instant of an event as the events service announces it (`date`, read in its
/// `timezone` when it has no offset, as events reads it).
fn date_ms(event: &EventDetails) -> Option<i64> {
    let zone = when::time_zone(&event.timezone).map_or(when::TimeZone::UTC, |(zone, _)| zone);
    when::parse_millis(&event.date, &zone).ok()
}

fn tags(event: &EventDetails) -> HashSet<String> {
    event.tags.iter().map(|tag| tag.to_lowercase()).collect()
}

impl Model {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        holdfast_common::sync::write(&self.inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        holdfast_common::sync::read(&self.inner)
    }

    /// Adds or replaces an event (as the events service lists and announces it).
    pub fn upsert_event(&self, event: &EventDetails) {
        let info = EventInfo {
            tags: tags(event),
            date_ms: date_ms(event).unwrap_or(i64::MAX),
        };
        self.write().events.insert(event.id.clone(), info);
    }

    /// Applies one bus message; answers false for a message already applied or of a type the
    /// model does not follow, an error for one that does not decode.
    pub fn apply(&self, message: &BusMessage) -> Result<bool, DecodeError> {
        enum Change {
            Upsert(EventDetails),
            Delete(String),
            Bought(OrderPurchased),
        }
        let change = match message.routing_key.as_str() {
            EventCreated::TYPE => Change::Upsert(message.decode::<EventCreated>()?.0),
            EventUpdated::TYPE => Change::Upsert(message.decode::<EventUpdated>()?.0),
            EventDeleted::TYPE => Change::Delete(message.decode::<EventDeleted>()?.0.id),
            OrderPurchased::TYPE => Change::Bought(message.decode()?),
            _ => return Ok(false),
        };
        {
            let mut inner = self.write();
            if !inner.seen.insert(message.message_id) {
                return Ok(false);
            }
            inner.seen_order.push_back(message.message_id);
            if inner.seen_order.len() > SEEN_CAPACITY
                && let Some(oldest) = inner.seen_order.pop_front()
            {
                inner.seen.remove(&oldest);
            }
        }
        match change {
            Change::Upsert(event) => self.upsert_event(&event),
            Change::Delete(id) => {
                self.write().events.remove(&id);
            }
            Change::Bought(order) => {
                let mut inner = self.write();
                inner
                    .bought_by_user
                    .entry(order.user_id.clone())
                    .or_default()
                    .insert(order.event_id.clone());
                inner
                    .buyers_of_event
                    .entry(order.event_id)
                    .or_default()
                    .insert(order.user_id);
            }
        }
        Ok(true)
    }

    pub fn knows_event(&self, event_id: &str) -> bool {
        self.read().events.contains_key(event_id)
    }

    /// Up to `limit` upcoming events for `user_id`, best first.
    pub fn recommend(&self, user_id: &str, limit: usize, now_ms: i64) -> Vec<String> {
        let inner = self.read();
        let bought = inner
            .bought_by_user
            .get(user_id)
            .cloned()
            .unwrap_or_default();
        let liked_tags: HashMap<&String, usize> = bought
            .iter()
            .filter_map(|e| inner.events.get(e))
            .flat_map(|info| info.tags.iter())
            .fold(HashMap::new(), |mut counts, tag| {
                *counts.entry(tag).or_default() += 1;
                counts
            });
        let co_bought = inner.co_bought(&bought);
        inner.rank(limit, now_ms, |id, info| {
            if bought.contains(id) {
                return None;
            }
            let tag_score: usize = info.tags.iter().filter_map(|t| liked_tags.get(t)).sum();
            Some(3 * tag_score + 2 * co_bought.get(id).copied().unwrap_or(0) + inner.popularity(id))
        })
    }

    /// Up to `limit` upcoming events by how many bought them: what a user with no purchases
    /// is recommended, and what an anonymous caller gets.
    pub fn popular(&self, limit: usize, now_ms: i64) -> Vec<String> {
        let inner = self.read();
        inner.rank(limit, now_ms, |id, _| Some(inner.popularity(id)))
    }

    /// Up to `limit` upcoming events like `event_id`, best first.
    pub fn related(&self, event_id: &str, limit: usize, now_ms: i64) -> Vec<String> {
        let inner = self.read();
        let Some(this) = inner.events.get(event_id) else {
            return Vec::new();
        };
        let co_bought = inner.co_bought(&HashSet::from([event_id.to_string()]));
        inner.rank(limit, now_ms, |id, info| {
            if id == event_id {
                return None;
            }
            let shared = info.tags.intersection(&this.tags).count();
            Some(3 * shared + 2 * co_bought.get(id).copied().unwrap_or(0) + inner.popularity(id))
        })
    }
}

impl Inner {
    fn popularity(&self, event_id: &str) -> usize {
        self.buyers_of_event.get(event_id).map_or(0, HashSet::len)
    }

    /// For each event, how many buyers of `events` also bought it.
    fn co_bought(&self, events: &HashSet<String>) -> HashMap<String, usize> {
        let buyers: HashSet<&String> = events
            .iter()
            .filter_map(|e| self.buyers_of_event.get(e))
            .flatten()
            .collect();
        let mut counts = HashMap::new();
        for buyer in buyers {
            for event in self.bought_by_user.get(buyer).into_iter().flatten() {
                if !events.contains(event) {
                    *counts.entry(event.clone()).or_default() += 1;
                }
            }
        }
        counts
    }

    /// Upcoming events scored by `score` (None = excluded), best first, sooner first on ties.
    fn rank(
        &self,
        limit: usize,
        now_ms: i64,
        score: impl Fn(&String, &EventInfo) -> Option<usize>,
    ) -> Vec<String> {
        let mut scored: Vec<(usize, i64, &String)> = self
            .events
            .iter()
            .filter(|(_, info)| info.date_ms >= now_ms)
            .filter_map(|(id, info)| score(id, info).map(|s| (s, info.date_ms, id)))
            .collect();
        scored.sort_by_key(|(score, date, id)| (Reverse(*score), *date, (*id).clone()));
        scored
            .into_iter()
            .take(limit)
            .map(|(_, _, id)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, tags: &[&str], date: &str) -> EventDetails {
        EventDetails {
            id: id.into(),
            title: id.into(),
            description: None,
            date: date.into(),
            timezone: "UTC".into(),
            location: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            image_url: None,
            organizer_id: "o".into(),
            rows: 1,
            seats_per_row: 1,
            price: 0.into(),
            currency: "INR".into(),
        }
    }

    fn model() -> Model {
        let model = Model::default();
        for e in [
            event("jazz1", &["jazz", "music"], "2030-01-01"),
            event("jazz2", &["Jazz"], "2030-02-01"),
            event("rock", &["rock", "music"], "2030-03-01"),
            event("talk", &["tech"], "2030-01-15"),
            event("past", &["jazz"], "2000-01-01"),
        ] {
            model
                .apply(&BusMessage::of(&EventCreated(e)).unwrap())
                .unwrap();
        }
        model
    }

    fn purchase(user: &str, event: &str) -> BusMessage {
        BusMessage::of(&OrderPurchased {
            order_id: format!("{user}-{event}"),
            user_id: user.into(),
            event_id: event.into(),
            seat_ids: vec!["R1-S1".into()],
            amount: 0.into(),
            currency: "INR".into(),
            payment_intent_id: None,
            email: None,
            event: None,
            seats: Vec::new(),
            tickets: Vec::new(),
        })
        .unwrap()
    }

    fn buy(model: &Model, user: &str, event: &str) {
        model.apply(&purchase(user, event)).unwrap();
    }

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn a_buyer_gets_events_like_the_ones_they_bought_never_past_or_bought_ones() {
        let model = model();
        buy(&model, "ada", "jazz1");
        let recs = model.recommend("ada", 10, NOW);
        assert_eq!(recs[0], "jazz2", "shares the jazz tag: {recs:?}");
        assert!(!recs.contains(&"jazz1".to_string()) && !recs.contains(&"past".to_string()));
        assert_eq!(model.recommend("ada", 1, NOW).len(), 1);
    }

    #[test]
    fn people_who_bought_the_same_event_pull_their_other_events_up() {
        let model = model();
        buy(&model, "ada", "talk");
        buy(&model, "bob", "talk");
        buy(&model, "bob", "rock");
        assert_eq!(model.recommend("ada", 10, NOW)[0], "rock");
        assert_eq!(model.related("talk", 10, NOW)[0], "rock");
    }

    #[test]
    fn strangers_get_popular_upcoming_events_soonest_first_on_ties() {
        let model = model();
        assert_eq!(
            model.recommend("nobody", 10, NOW),
            vec!["jazz1", "talk", "jazz2", "rock"]
        );
        buy(&model, "x", "rock");
        assert_eq!(model.recommend("nobody", 1, NOW), vec!["rock"]);
    }

    #[test]
    fn redelivered_messages_count_once_and_deleted_events_disappear() {
        let model = model();
        let purchase = purchase("ada", "rock");
        assert!(model.apply(&purchase).unwrap());
        assert!(!model.apply(&purchase).unwrap());
        assert_eq!(model.read().popularity("rock"), 1);
        let deleted = BusMessage::of(&EventDeleted(event("jazz2", &[], "2030-02-01"))).unwrap();
        model.apply(&deleted).unwrap();
        assert!(!model.knows_event("jazz2"));
        assert!(model.related("unknown", 5, NOW).is_empty());
    }

    /// A purchase whose buyer field was renamed is an error, not a silently ignored order.
    #[test]
    fn a_message_missing_a_field_is_an_error() {
        let mut renamed = purchase("ada", "rock");
        let payload = renamed.payload.as_object_mut().unwrap();
        let user = payload.remove("userId").unwrap();
        payload.insert("buyerId".into(), user);
        assert!(model().apply(&renamed).is_err());
    }
}
