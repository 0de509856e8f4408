//! Listing, reading, creating, updating and deleting events.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::{AuthUser, Organizer};
use holdfast_common::error::{ApiError, ErrorBody};
use holdfast_common::extract::JsonBody;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::catalogue::Page;
use crate::domain::event::{Event, EventFields, EventView};
use crate::error::EventsError;
use crate::layout_lock::LayoutLock;
use crate::store::EventQuery;
use holdfast_common::ids::{new_object_id, object_id};
use holdfast_common::messages::{self, EventCreated, EventDeleted, EventUpdated, Message};
use holdfast_common::when;

pub const MAX_LIMIT: u64 = 100;

/// `GET /events` query parameters, all optional. Numbers are read as text so that a bad one
/// gets the error body rather than a bare rejection.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Words in the title, description or location (at most 200 characters).
    #[param(value_type = Option<String>, max_length = 200)]
    q: Option<String>,
    /// Only events with this tag.
    tag: Option<String>,
    /// Only events at or after this date (ISO 8601; offset-less is UTC).
    #[param(example = "2027-01-01")]
    from: Option<String>,
    /// Only events at or before this date; a bare date includes that whole day (UTC).
    #[param(example = "2027-12-31")]
    to: Option<String>,
    /// 1-based page number.
    #[param(value_type = Option<u32>, minimum = 1, default = 1)]
    page: Option<String>,
    /// Events per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 100)]
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

/// A bound of the date range, read in UTC by `read` (the start or the end of what it names).
fn instant(
    field: &'static str,
    raw: Option<String>,
    read: fn(&str, &when::TimeZone) -> Result<i64, &'static str>,
) -> Result<Option<i64>, EventsError> {
    non_empty(raw)
        .map(|raw| read(&raw, &when::TimeZone::UTC))
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
            from_ms: instant("from", self.from, when::parse_millis)?,
            // Both ends are inclusive: `to=2027-06-10` takes in the whole of 10 June.
            to_ms: instant("to", self.to, when::parse_end_millis)?,
            offset: (page - 1) * limit,
            limit,
        })
    }
}

/// Lists events sorted by date, a page at a time.
#[utoipa::path(get, path = "/events", tag = "events", params(ListParams),
    responses(
        (status = 200, description = "One page of events", body = Vec<EventView>,
            headers(("x-total-count" = u64, description = "Events matching, on all pages"))),
        (status = 400, description = "`VALIDATION_FAILED`: a bad `page`, `limit`, `from` or `to`", body = ErrorBody),
    ))]
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
    let events: Vec<EventView> = events.iter().map(Event::view).collect();
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

/// One event.
#[utoipa::path(get, path = "/events/{id}", tag = "events", params(EventId),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, EventsError> {
    Ok(Json(load(&state, &id).await?.view()).into_response())
}

/// The `{id}` of an event's path.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
pub struct EventId(
    /// 24 hexadecimal digits.
    #[param(example = "6650c0ffee0000000000abcd")]
    String,
);

/// The event, if `caller` may change it: its organizer or an admin.
async fn editable(state: &AppState, caller: &AuthUser, id: &str) -> Result<Event, EventsError> {
    let event = load(state, id).await?;
    if caller.is_admin() || event.organizer_id == caller.id() {
        Ok(event)
    } else {
        Err(EventsError::NotOwner)
    }
}

/// Creates an event (organizer, admin); the caller becomes its organizer. `title` and `date`
/// are required, the rest take their defaults.
#[utoipa::path(post, path = "/events", tag = "events",
    request_body = EventFields,
    responses(
        (status = 201, description = "Created", body = EventView),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED` with `details.fields`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not an organizer or admin; `CSRF_ORIGIN`", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Organizer(caller): Organizer,
    JsonBody(fields): JsonBody<EventFields>,
) -> Result<Response, EventsError> {
    let event = fields.create(new_object_id(), caller.id().to_string())?;
    state.events.insert(&event).await?;
    state.list_cache.invalidate();
    tracing::info!(event_id = %event.id, organizer_id = %event.organizer_id, "event created");
    state.publish(&EventCreated(event.details())).await;
    Ok((StatusCode::CREATED, Json(event.view())).into_response())
}

/// Changes any subset of an event's fields (its organizer, admin); `null` clears a nullable
/// field. `rows` and `seatsPerRow` cannot change once a seat is held or sold. The body is
/// `EventFields`, whose required marks (`title`, `date`) apply to creation only: here every
/// field may be left out.
#[utoipa::path(put, path = "/events/{id}", tag = "events",
    params(EventId), request_body = EventFields,
    responses(
        (status = 200, description = "The updated event", body = EventView),
        (status = 400, description = "`INVALID_ID`, `INVALID_JSON`, `VALIDATION_FAILED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not its organizer nor an admin; `CSRF_ORIGIN`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`LAYOUT_LOCKED`: seats are held or sold; `LAYOUT_CHANGING`: another change is under way", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Organizer(caller): Organizer,
    Path(id): Path<String>,
    JsonBody(fields): JsonBody<EventFields>,
) -> Result<Response, EventsError> {
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
    state.publish(&EventUpdated(updated.details())).await;
    Ok(Json(updated.view()).into_response())
}

/// Deletes an event (its organizer, admin) unless seats of it are held or sold.
#[utoipa::path(delete, path = "/events/{id}", tag = "events",
    params(EventId),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not its organizer nor an admin; `CSRF_ORIGIN`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`EVENT_HAS_ORDERS`: seats are held or sold; `LAYOUT_CHANGING`", body = ErrorBody),
    ))]
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
    state.publish(&EventDeleted(event.details())).await;
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
    pub(crate) async fn publish<M: Message>(&self, message: &M) {
        if let Err(error) = messages::publish(&*self.infra.bus, message).await {
            tracing::warn!(%error, routing_key = M::TYPE, "event change not published");
        }
    }
}
