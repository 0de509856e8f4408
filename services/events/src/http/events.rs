//! Listing, reading, creating, updating and deleting events.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::{AuthUser, Organizer};
use holdfast_common::bus;
use holdfast_common::error::ApiError;
use holdfast_common::extract::ValidJson;
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::catalogue::Page;
use crate::domain::event::{Event, EventFields};
use crate::error::EventsError;
use crate::layout_lock::LayoutLock;
use crate::store::EventQuery;
use holdfast_common::ids::{new_object_id, object_id};
use holdfast_common::when;

pub const MAX_LIMIT: u64 = 100;

/// `GET /events` query parameters, all optional.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    q: Option<String>,
    tag: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<String>,
    limit: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn number_in(
    field: &'static str,
    raw: Option<String>,
    default: u64,
    max: u64,
    message: &'static str,
) -> Result<u64, EventsError> {
    let Some(raw) = non_empty(raw) else {
        return Ok(default);
    };
    raw.parse::<u64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or(EventsError::InvalidParameter { field, message })
}

fn instant(field: &'static str, raw: Option<String>) -> Result<Option<i64>, EventsError> {
    non_empty(raw)
        .map(|raw| when::parse_millis(&raw, &when::TimeZone::UTC))
        .transpose()
        .map_err(|message| EventsError::InvalidParameter { field, message })
}

impl ListParams {
    fn into_query(self) -> Result<EventQuery, EventsError> {
        let page = number_in(
            "page",
            self.page,
            1,
            u64::from(u32::MAX),
            "must be a positive integer",
        )?;
        let limit = number_in(
            "limit",
            self.limit,
            MAX_LIMIT,
            MAX_LIMIT,
            "must be 1 to 100",
        )?;
        Ok(EventQuery {
            text: non_empty(self.q).filter(|q| q.chars().count() <= 200),
            tag: non_empty(self.tag),
            from_ms: instant("from", self.from)?,
            to_ms: instant("to", self.to)?,
            offset: (page - 1) * limit,
            limit,
        })
    }
}

/// `GET /events`: public, sorted by date, with `X-Total-Count`.
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, EventsError> {
    let query = params.into_query()?;
    let page = match state.list_cache.get(&query) {
        Some(page) => page,
        None => {
            let version = state.list_cache.version();
            let page = render_page(&state, &query).await?;
            state.list_cache.put(query, version, page.clone());
            page
        }
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                HeaderName::from_static("x-total-count"),
                HeaderValue::from(page.total),
            ),
        ],
        page.body,
    )
        .into_response())
}

/// One page of the list, queried and serialised.
async fn render_page(state: &AppState, query: &EventQuery) -> Result<Page, EventsError> {
    let (events, total) = state.events.search(query).await?;
    let events: Vec<Value> = events.iter().map(Event::to_json).collect();
    // Serialising JSON values into memory cannot fail.
    let body = serde_json::to_vec(&events)
        .map_err(|_| ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    Ok(Page {
        body: body.into(),
        total,
    })
}

async fn load(state: &AppState, id: &str) -> Result<Event, EventsError> {
    let id = object_id(id).ok_or(EventsError::InvalidId)?;
    state.events.get(&id).await?.ok_or(EventsError::NotFound)
}

/// `GET /events/{id}`
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, EventsError> {
    Ok(Json(load(&state, &id).await?.to_json()))
}

/// The event, if `caller` may change it: its organizer or an admin.
async fn editable(state: &AppState, caller: &AuthUser, id: &str) -> Result<Event, EventsError> {
    let event = load(state, id).await?;
    if caller.is_admin() || event.organizer_id == caller.id() {
        Ok(event)
    } else {
        Err(EventsError::NotOwner)
    }
}

/// `POST /events` (organizer, admin): the caller becomes the organizer.
pub async fn create(
    State(state): State<AppState>,
    Organizer(caller): Organizer,
    ValidJson(fields): ValidJson<EventFields>,
) -> Result<Response, EventsError> {
    let event = fields.create(new_object_id(), caller.id().to_string())?;
    state.events.insert(&event).await?;
    state.list_cache.invalidate();
    tracing::info!(event_id = %event.id, organizer_id = %event.organizer_id, "event created");
    state.publish("event.created", &event).await;
    Ok((StatusCode::CREATED, Json(event.to_json())).into_response())
}

/// `PUT /events/{id}` (its organizer, admin): any subset of the fields.
pub async fn update(
    State(state): State<AppState>,
    Organizer(caller): Organizer,
    Path(id): Path<String>,
    ValidJson(fields): ValidJson<EventFields>,
) -> Result<Json<Value>, EventsError> {
    let event = editable(&state, &caller, &id).await?;
    let changes_layout = fields.changes_layout(&event);
    // Checked (and refused when invalid) before asking the orders service anything.
    let updated = fields.update(event)?;
    let lock = if changes_layout {
        Some(locked(&state, &updated.id, EventsError::LayoutLocked).await?)
    } else {
        None
    };
    let written = state.events.update(&updated).await;
    if let Some(token) = lock {
        state.orders.unlock_layout(&updated.id, &token).await;
    }
    if !written? {
        return Err(EventsError::NotFound);
    }
    state.list_cache.invalidate();
    state.publish("event.updated", &updated).await;
    Ok(Json(updated.to_json()))
}

/// `DELETE /events/{id}` (its organizer, admin)
pub async fn delete(
    State(state): State<AppState>,
    Organizer(caller): Organizer,
    Path(id): Path<String>,
) -> Result<StatusCode, EventsError> {
    let event = editable(&state, &caller, &id).await?;
    let token = locked(&state, &event.id, EventsError::HasOrders).await?;
    let deleted = state.events.delete(&event.id).await;
    state.orders.unlock_layout(&event.id, &token).await;
    if !deleted? {
        return Err(EventsError::NotFound);
    }
    state.list_cache.invalidate();
    tracing::info!(event_id = %event.id, by = %caller.id(), "event deleted");
    state.publish("event.deleted", &event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes the event's layout lock (see [`crate::layout_lock`]): `refusal` when seats are held
/// or sold.
async fn locked(
    state: &AppState,
    event_id: &str,
    refusal: EventsError,
) -> Result<String, EventsError> {
    match state.orders.lock_layout(event_id).await? {
        LayoutLock::Granted(token) => Ok(token),
        LayoutLock::HasOrders { .. } => Err(refusal),
        LayoutLock::Busy => Err(EventsError::LayoutBusy),
    }
}

impl AppState {
    /// Announces a change on the bus. The change is already stored; a bus failure is logged
    /// and consumers catch up from the next message about the event.
    pub(crate) async fn publish(&self, routing_key: &str, event: &Event) {
        let published = bus::publish(&*self.infra.bus, routing_key, event.to_json()).await;
        if let Err(error) = published {
            tracing::warn!(%error, event_id = %event.id, routing_key, "event change not published");
        }
    }
}
