//! `/events/{eventId}/queue…`: an event's admission queue (see [`crate::admission`]) — the
//! organizer's settings, pace and removal; anyone's view and live stream of it; a buyer's
//! place, leaving and admission. And the `Admission-Pass` header that holds and purchases on a
//! queued event carry.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use holdfast_common::extract::{ValidJson, field_error};
use holdfast_common::when::{TimeZone, format_millis, parse_millis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::event_id;
use crate::admission::{self, QueueNews, QueueRequest};
use crate::error::OrdersError;
use crate::state::AppState;
use crate::store::admission::{Overview, Standing};

/// The header an admitted buyer sends their admission in.
pub const ADMISSION_HEADER: &str = "admission-pass";
/// The stream's heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The `Admission-Pass` header of a request, if it has one.
pub struct AdmissionPass(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for AdmissionPass {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let pass = parts
            .headers
            .get(ADMISSION_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty());
        Ok(Self(pass))
    }
}

impl AdmissionPass {
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// An event's queue, as its organizer sets it.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"opensAt": "2027-03-14T09:00:00Z", "ratePerMinute": 500,
    "admissionWindowSeconds": 900, "earlyJoining": true}))]
pub struct QueueSettingsRequest {
    /// When admission starts (ISO 8601; without an offset, UTC).
    #[validate(required(message = "required"))]
    #[schema(required, value_type = String, format = DateTime)]
    opens_at: Option<String>,
    /// Buyers let in per minute, 1 to 1,000,000; by default one per 20 seats of the event
    /// (60 to 6,000).
    #[validate(range(min = 1, max = 1_000_000, message = "must be 1 to 1000000"))]
    rate_per_minute: Option<u32>,
    /// How long an admitted buyer may hold and buy, 60 to 86,400 seconds (default 900).
    #[validate(range(min = 60, max = 86_400, message = "must be 60 to 86400"))]
    admission_window_seconds: Option<u64>,
    /// Whether people may join before `opensAt` (they are placed in a random order at it);
    /// default true.
    early_joining: Option<bool>,
    /// A proof of work each join must carry: leading zero bits, 0 (none, the default) to 24.
    #[validate(range(max = 24, message = "must be 0 to 24"))]
    proof_bits: Option<u8>,
}

/// A change of pace during the sale.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"ratePerMinute": 1200}))]
pub struct PaceRequest {
    /// The new rate, 1 to 1,000,000 a minute (resumes a paused queue).
    #[validate(range(min = 1, max = 1_000_000, message = "must be 1 to 1000000"))]
    rate_per_minute: Option<u32>,
    /// `true` pauses admission (nobody more is let in; who is in stays in); `false` resumes
    /// it at the rate.
    paused: Option<bool>,
}

/// An event's queue: its settings and where it stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    event_id: String,
    #[schema(format = DateTime)]
    opens_at: String,
    /// Whether `opensAt` has passed.
    open: bool,
    rate_per_minute: u32,
    paused: bool,
    admission_window_seconds: u64,
    early_joining: bool,
    /// The proof of work a join must carry (0: none).
    proof_bits: u8,
    /// People in line, admitted ones included.
    length: u64,
    /// Places 1 to this are in.
    admitted_up_to: u64,
    /// Admissions given (organizers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    admitted: Option<u64>,
    /// Admissions not yet expired (organizers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    shopping: Option<u64>,
}

impl QueueView {
    pub fn of(event_id: &str, overview: &Overview) -> Self {
        let settings = &overview.settings;
        Self {
            event_id: event_id.to_string(),
            opens_at: format_millis(settings.opens_at_ms),
            open: overview.now_ms >= settings.opens_at_ms,
            rate_per_minute: settings.rate_per_minute,
            paused: overview.pace.rate_per_minute == 0,
            admission_window_seconds: settings.window.as_secs(),
            early_joining: settings.early_joining,
            proof_bits: settings.proof_bits,
            length: overview.length,
            admitted_up_to: overview.admitted_by,
            admitted: overview.shopping.map(|_| overview.admissions),
            shopping: overview.shopping,
        }
    }
}

/// Where a buyer stands: `waiting` (before the opening, or their place is not in), `ready`
/// (their place is in: ask for the admission), `admitted` (until `admissionExpiresAt`) or
/// `expired`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaceView {
    event_id: String,
    #[schema(example = "waiting")]
    state: &'static str,
    /// 1 for the first; `null` before the opening (places are drawn then).
    place: Option<u64>,
    /// People ahead not yet let in.
    ahead: Option<u64>,
    admitted_up_to: u64,
    length: u64,
    rate_per_minute: u32,
    paused: bool,
    #[schema(format = DateTime)]
    opens_at: String,
    /// When the place is expected in at the current rate (`null` before the opening or
    /// while paused).
    #[schema(format = DateTime)]
    estimated_admission_at: Option<String>,
    estimated_wait_seconds: Option<u64>,
    #[schema(format = DateTime)]
    admission_expires_at: Option<String>,
}

impl PlaceView {
    fn of(event_id: &str, standing: &Standing) -> Self {
        let now = standing.now_ms;
        let in_now = standing.place.is_some_and(|p| p <= standing.admitted_by);
        let state = match standing.admission_expires_at_ms {
            Some(expiry) if expiry > now => "admitted",
            Some(_) => "expired",
            None if in_now => "ready",
            None => "waiting",
        };
        let estimate = standing
            .place
            .and_then(|place| standing.pace.admitted_at(place))
            .map(|at| at.max(now));
        Self {
            event_id: event_id.to_string(),
            state,
            place: standing.place,
            ahead: standing
                .place
                .map(|p| p.saturating_sub(1).saturating_sub(standing.admitted_by)),
            admitted_up_to: standing.admitted_by,
            length: standing.length,
            rate_per_minute: standing.settings.rate_per_minute,
            paused: standing.pace.rate_per_minute == 0,
            opens_at: format_millis(standing.settings.opens_at_ms),
            estimated_admission_at: estimate.map(format_millis),
            estimated_wait_seconds: estimate
                .map(|at| u64::try_from(at - now).unwrap_or(0).div_ceil(1000)),
            admission_expires_at: standing.admission_expires_at_ms.map(format_millis),
        }
    }
}

/// An optional join body.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueJoinRequest {
    /// When the queue asks for a proof of work (`proofBits` above 0): a string whose SHA-256 of
    /// `"{eventId}:{yourUserId}:{proof}"` starts with that many zero bits.
    #[validate(length(max = 128, message = "must be at most 128 characters"))]
    proof: Option<String>,
}

/// A signed admission: send it as the `Admission-Pass` header of holds, hold changes, best
/// available and purchases on this event until `expiresAt`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionView {
    event_id: String,
    admission: String,
    #[schema(format = DateTime)]
    expires_at: String,
}

/// Turns the event's admission queue on (or changes it before it opens): from then on holds,
/// hold changes, best available and purchases on the event need an admission from the queue.
#[utoipa::path(put, path = "/events/{event_id}/queue", tag = "queue",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    request_body = QueueSettingsRequest,
    responses(
        (status = 200, description = "The queue", body = QueueView),
        (status = 400, description = "`INVALID_ID`, `INVALID_JSON`, `VALIDATION_FAILED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer nor an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
        (status = 409, description = "`QUEUE_OPEN`: the queue has opened; change its pace instead", body = ErrorBody),
    ))]
pub async fn configure(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
    ValidJson(request): ValidJson<QueueSettingsRequest>,
) -> Result<Json<QueueView>, OrdersError> {
    let event_id = event_id(&event)?;
    let opens_at_ms = parse_millis(
        request.opens_at.as_deref().unwrap_or_default(),
        &TimeZone::UTC,
    )
    .map_err(|message| field_error("opensAt", message))?;
    let queue = QueueRequest {
        opens_at_ms,
        rate_per_minute: request.rate_per_minute,
        window: request.admission_window_seconds.map(Duration::from_secs),
        early_joining: request.early_joining.unwrap_or(true),
        proof_bits: request.proof_bits.unwrap_or(0),
    };
    let overview = admission::configure(&state.admission, &caller, &event_id, &queue).await?;
    Ok(Json(QueueView::of(&event_id, &overview)))
}

/// Changes the admission rate (also resuming a paused queue) or pauses admission during the
/// sale; who is in stays in.
#[utoipa::path(patch, path = "/events/{event_id}/queue", tag = "queue",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    request_body = PaceRequest,
    responses(
        (status = 200, description = "The queue", body = QueueView),
        (status = 400, description = "`INVALID_ID`, `INVALID_JSON`, `VALIDATION_FAILED` (neither field, or a rate with `paused: true`)", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer nor an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event, or it has no queue", body = ErrorBody),
    ))]
pub async fn change_pace(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
    ValidJson(request): ValidJson<PaceRequest>,
) -> Result<Json<QueueView>, OrdersError> {
    let event_id = event_id(&event)?;
    let paused = match (request.rate_per_minute, request.paused) {
        (None, None) => Err(field_error("ratePerMinute", "give ratePerMinute or paused")),
        (Some(_), Some(true)) => Err(field_error(
            "paused",
            "a paused queue has no rate: leave ratePerMinute out",
        )),
        (_, paused) => Ok(paused.unwrap_or(false)),
    }?;
    let overview = admission::change_pace(
        &state.admission,
        &caller,
        &event_id,
        request.rate_per_minute,
        paused,
    )
    .await?;
    Ok(Json(QueueView::of(&event_id, &overview)))
}

/// Turns the event's queue off: its line and admissions are forgotten, and holds no longer
/// need an admission (on every replica within a second).
#[utoipa::path(delete, path = "/events/{event_id}/queue", tag = "queue",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 204, description = "Off"),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer nor an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<StatusCode, OrdersError> {
    let event_id = event_id(&event)?;
    admission::remove(&state.admission, &caller, &event_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The event's queue (no sign-in needed): its settings, length and how far admission has
/// come.
#[utoipa::path(get, path = "/events/{event_id}/queue", tag = "queue",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 200, description = "The queue", body = QueueView),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: the event has no queue", body = ErrorBody),
    ))]
pub async fn view(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> Result<Json<QueueView>, OrdersError> {
    let event_id = event_id(&event)?;
    let overview = admission::overview(&state.admission, &event_id, false).await?;
    Ok(Json(QueueView::of(&event_id, &overview)))
}

/// The `queue` events of the stream.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueNewsView {
    /// Places 1 to this are in: your position is your place minus this.
    admitted_up_to: u64,
    length: u64,
    rate_per_minute: u32,
    paused: bool,
    #[schema(format = DateTime)]
    opens_at: String,
    #[schema(format = DateTime)]
    at: String,
}

/// One client's stream of a queue's news.
struct Watching {
    /// What the client is told first, read when it connected.
    first: Option<QueueNews>,
    receiver: tokio::sync::watch::Receiver<Option<QueueNews>>,
    /// What the client was last told (a broadcast that repeats it is not sent again).
    last: Option<QueueNews>,
    closed: bool,
}

impl Watching {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if self.closed {
            return None;
        }
        if let Some(first) = self.first.take() {
            let event = news_event(&first);
            self.last = Some(first);
            return Some((Ok(event), self));
        }
        loop {
            self.receiver.changed().await.ok()?;
            let news = self.receiver.borrow_and_update().clone();
            let Some(news) = news else {
                // Turned off: say so once, then end.
                self.closed = true;
                return Some((Ok(Event::default().event("closed").data("{}")), self));
            };
            if self.last.as_ref().map(QueueNews::shown) != Some(news.shown()) {
                let event = news_event(&news);
                self.last = Some(news);
                return Some((Ok(event), self));
            }
        }
    }
}

fn news_event(news: &QueueNews) -> Event {
    let view = QueueNewsView {
        admitted_up_to: news.admitted_up_to,
        length: news.length,
        rate_per_minute: news.rate_per_minute,
        paused: news.paused,
        opens_at: format_millis(news.opens_at_ms),
        at: format_millis(news.now_ms),
    };
    Event::default()
        .event("queue")
        .json_data(&view)
        .unwrap_or_else(|_| Event::default().comment("unserializable"))
}

/// The event's queue live, as Server-Sent Events (no sign-in needed): a `queue` event now and
/// at each change (`admittedUpTo`, `length`, `ratePerMinute`, `paused`), the same for every
/// watcher — a client turns it into its own position and wait — then `closed` if the queue is
/// turned off; a heartbeat comment every 15 s.
#[utoipa::path(get, path = "/events/{event_id}/queue/stream", tag = "queue",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = QueueNewsView),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: the event has no queue", body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, OrdersError> {
    let event_id = event_id(&event)?;
    let overview = admission::overview(&state.admission, &event_id, false).await?;
    let watching = Watching {
        first: Some(QueueNews::of(&overview)),
        receiver: state.admission.news.watch(&event_id),
        last: None,
        closed: false,
    };
    let events = futures_util::stream::unfold(watching, Watching::next);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// Joins the event's queue (once per person: joining again keeps the place). Before
/// `opensAt` places are not known yet: everyone who joins before it is placed in a random
/// order at it; after it, first come first served behind them.
#[utoipa::path(post, path = "/events/{event_id}/queue/me", tag = "queue",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    request_body(content = Option<QueueJoinRequest>, description = "Optional; `proof` when the queue asks for one"),
    responses(
        (status = 201, description = "Joined", body = PlaceView),
        (status = 200, description = "Already in line: where you stand", body = PlaceView),
        (status = 400, description = "`INVALID_ID`, `INVALID_JSON`, `VALIDATION_FAILED`", body = ErrorBody),
        (status = 403, description = "`PROOF_REQUIRED` with `details.proofBits`: no proof, or not enough", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: the event has no queue", body = ErrorBody),
        (status = 409, description = "`QUEUE_NOT_OPEN` with `details.opensAt`: this queue takes nobody before it opens", body = ErrorBody),
    ))]
pub async fn join(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
    body: Bytes,
) -> Result<Response, OrdersError> {
    let event_id = event_id(&event)?;
    let request: QueueJoinRequest = super::optional_json(&body)?;
    let (standing, new) = admission::join(
        &state.admission,
        &caller,
        &event_id,
        request.proof.as_deref(),
    )
    .await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(PlaceView::of(&event_id, &standing))).into_response())
}

/// Where you stand in the event's queue: your place, the people ahead, how far admission has
/// come and an estimate of your wait at the current rate.
#[utoipa::path(get, path = "/events/{event_id}/queue/me", tag = "queue",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 200, description = "Where you stand", body = PlaceView),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no queue, or you are not in it", body = ErrorBody),
    ))]
pub async fn place(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<Json<PlaceView>, OrdersError> {
    let event_id = event_id(&event)?;
    let standing = admission::standing(&state.admission, &caller, &event_id).await?;
    Ok(Json(PlaceView::of(&event_id, &standing)))
}

/// Leaves the event's queue: the place is given up and the people behind move up.
#[utoipa::path(delete, path = "/events/{event_id}/queue/me", tag = "queue",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 204, description = "Left"),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no queue, or you are not in it", body = ErrorBody),
        (status = 409, description = "`ALREADY_ADMITTED`: an admission is yours until it expires", body = ErrorBody),
    ))]
pub async fn leave(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<StatusCode, OrdersError> {
    let event_id = event_id(&event)?;
    admission::leave(&state.admission, &caller, &event_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your signed admission, once your place is in: the same admission (and expiry) every time
/// you ask, never renewed. Send it as the `Admission-Pass` header of holds, hold changes,
/// best available and purchases on this event.
#[utoipa::path(post, path = "/events/{event_id}/queue/admission", tag = "queue",
    params(("event_id" = String, Path, description = "The event's id (24 hexadecimal characters)")),
    responses(
        (status = 200, description = "Admitted", body = AdmissionView),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 403, description = "`ADMISSION_EXPIRED` with `details.expiredAt`: your admission ran out; it is not renewed", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no queue, or you are not in it", body = ErrorBody),
        (status = 409, description = "`NOT_ADMITTED_YET` with `details.place` and `details.estimatedAdmissionAt`", body = ErrorBody),
    ))]
pub async fn admit(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<Json<AdmissionView>, OrdersError> {
    let event_id = event_id(&event)?;
    let pass = admission::admit(&state.admission, &caller, &event_id).await?;
    Ok(Json(AdmissionView {
        event_id: event_id.to_string(),
        admission: pass.token,
        expires_at: format_millis(pass.expires_at_ms),
    }))
}
