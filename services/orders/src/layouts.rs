//! Event layouts (rows, seats per row, price, currency), read from the events service and
//! cached. `event.updated` / `event.deleted` on the bus drop an event from every replica's
//! cache (a queue per replica); entries
//! also expire after `LAYOUT_CACHE_SECONDS`, which bounds staleness if a message is missed.
//! An event the events service does not know is `None`: no seat map is ever invented for it.
//! Each layout carries the seat board's layout version read just before it, so a hold checked
//! against a layout that has changed since is refused by the board, whatever the cache holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use holdfast_common::bus::MessageBus;
use holdfast_common::messages::{EventDeleted, EventUpdated, Message};
use holdfast_common::replicas::BaseUrls;
use holdfast_common::sync::lock;
use holdfast_common::venue::VenueSpec;
use holdfast_common::{money, when};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::ids::EventId;
use crate::domain::seat::{Layout, VenuePlan};
use crate::error::{LayoutUnavailable, OrdersError};
use crate::store::board::SeatBoard;

pub struct Layouts {
    board: Arc<dyn SeatBoard>,
    client: reqwest::Client,
    events: BaseUrls,
    ttl: Duration,
    cache: Mutex<HashMap<EventId, (Layout, Instant)>>,
    /// One fetch at a time per event: at an on-sale's first second every buyer misses the
    /// cache at once, and a venue's layout is worth fetching and expanding only once.
    loading: Mutex<HashMap<EventId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Layouts {
    pub fn new(
        board: Arc<dyn SeatBoard>,
        events_url: &str,
        ttl: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            board,
            client: reqwest::Client::builder().timeout(timeout).build()?,
            events: BaseUrls::new(events_url),
            ttl,
            cache: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, event_id: &EventId) -> Option<Layout> {
        let cache = lock(&self.cache);
        cache
            .get(event_id)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(layout, _)| layout.clone())
    }

    /// The layout of an existing event, else 404 `NOT_FOUND`.
    pub async fn existing(&self, event_id: &EventId) -> Result<Layout, OrdersError> {
        self.get(event_id).await?.ok_or(OrdersError::EventNotFound)
    }

    /// The layout of `event_id`, `None` when there is no such event.
    pub async fn get(&self, event_id: &EventId) -> Result<Option<Layout>, LayoutUnavailable> {
        if let Some(layout) = self.cached(event_id) {
            return Ok(Some(layout));
        }
        let flight = lock(&self.loading)
            .entry(event_id.clone())
            .or_default()
            .clone();
        let _turn = flight.lock().await;
        // Another request may have fetched it while this one waited.
        if let Some(layout) = self.cached(event_id) {
            return Ok(Some(layout));
        }
        let fetched = self.fetch(event_id).await;
        lock(&self.loading).remove(event_id);
        fetched
    }

    /// Reads the layout of `event_id` from the events service and caches it.
    async fn fetch(&self, event_id: &EventId) -> Result<Option<Layout>, LayoutUnavailable> {
        // Read before the layout: if the layout changes in between, this version is already
        // stale and the seat board refuses holds checked against it.
        let version = self
            .board
            .layout_version(event_id)
            .await
            .map_err(|e| LayoutUnavailable(e.to_string()))?;
        let url = format!("/events/{event_id}");
        let response = self
            .events
            .send(|base| self.client.get(format!("{base}{url}")))
            .await
            .map_err(|e| LayoutUnavailable(e.to_string()))?;
        match response.status().as_u16() {
            200 => {}
            400 | 404 => return Ok(None),
            status => return Err(LayoutUnavailable(format!("GET {url} answered {status}"))),
        }
        let event: Value = response
            .json()
            .await
            .map_err(|e| LayoutUnavailable(e.to_string()))?;
        let mut layout: Layout = serde_json::from_value(event.clone())
            .map_err(|e| LayoutUnavailable(format!("event {event_id}: {e}")))?;
        layout.price_minor = event["price"]
            .as_number()
            .and_then(|n| money::parse_minor(n).ok())
            .ok_or_else(|| LayoutUnavailable(format!("event {event_id} has no valid price")))?;
        layout.venue = match event.get("venue") {
            None | Some(Value::Null) => None,
            Some(venue) => Some(Arc::new(venue_plan(event_id, venue)?)),
        };
        layout.version = version;
        layout.starts_at_ms = event["date"]
            .as_str()
            .and_then(|date| when::parse_millis(date, &when::TimeZone::UTC).ok());
        lock(&self.cache).insert(event_id.clone(), (layout.clone(), Instant::now()));
        Ok(Some(layout))
    }

    pub fn invalidate(&self, event_id: &EventId) {
        lock(&self.cache).remove(event_id);
    }

    /// Drops cached layouts as the events service announces changes. Each orders replica has a
    /// queue of its own, so every replica drops its copy.
    pub async fn follow_changes(self: Arc<Self>, bus: Arc<dyn MessageBus>) -> anyhow::Result<()> {
        let mut subscription = bus
            .subscribe_replica(
                "orders.layout-cache",
                &[EventUpdated::TYPE, EventDeleted::TYPE],
            )
            .await?;
        tokio::spawn(async move {
            while let Some(delivery) = subscription.next().await {
                let message = &delivery.message;
                let changed = match message.routing_key.as_str() {
                    EventUpdated::TYPE => message.decode::<EventUpdated>().map(|m| m.0.id),
                    _ => message.decode::<EventDeleted>().map(|m| m.0.id),
                };
                match changed {
                    Ok(id) => {
                        if let Some(id) = EventId::parse(&id) {
                            self.invalidate(&id);
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "a layout change this service cannot read")
                    }
                }
                if let Err(error) = delivery.ack().await {
                    tracing::warn!(%error, "cannot acknowledge a layout change");
                }
            }
        });
        Ok(())
    }
}

/// The event's venue, expanded (the events service checked it when it was written).
fn venue_plan(event_id: &EventId, venue: &Value) -> Result<VenuePlan, LayoutUnavailable> {
    let spec = VenueSpec::deserialize(venue)
        .map_err(|e| LayoutUnavailable(format!("event {event_id} venue: {e}")))?;
    let venue = spec.expand().map_err(|problems| {
        LayoutUnavailable(format!("event {event_id} venue is invalid: {problems:?}"))
    })?;
    Ok(VenuePlan::new(venue))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::routing::get;

    use super::*;
    use crate::store::board::MemoryBoard;

    /// An events service that counts the layouts it is asked for.
    async fn events_service(asked: Arc<AtomicUsize>) -> String {
        let app = Router::new().route(
            "/events/{id}",
            get(
                move |axum::extract::Path(id): axum::extract::Path<String>| {
                    let asked = asked.clone();
                    async move {
                        asked.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        axum::Json(serde_json::json!({
                            "_id": id, "rows": 2, "seatsPerRow": 3, "price": 10, "currency": "INR",
                            "date": "2030-01-01T20:00:00Z", "venue": null
                        }))
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_fetch_a_layout_once() {
        let asked = Arc::new(AtomicUsize::new(0));
        let url = events_service(asked.clone()).await;
        let layouts = Arc::new(
            Layouts::new(
                Arc::new(MemoryBoard::new()),
                &url,
                Duration::from_secs(60),
                Duration::from_secs(5),
            )
            .unwrap(),
        );
        let event: EventId = "0123456789abcdef01234567".into();
        let readers: Vec<_> = (0..32)
            .map(|_| {
                let (layouts, event) = (layouts.clone(), event.clone());
                tokio::spawn(async move { layouts.existing(&event).await.unwrap().capacity() })
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.await.unwrap(), 6);
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }
}
