//! `/checkin/events/{eventId}/…` (public: `/api/checkin/…`): scanning at the door online and
//! offline, the download offline scanners sync by, live counts and scanner devices (see
//! [`crate::checkin`]); and the event's ticket policy (`/events/{eventId}/ticket-policy`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use holdfast_common::extract::JsonBody;
use holdfast_common::ticket_pass::{MAX_PASS_LEN, Pass};
use holdfast_common::when::{self, format_millis};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::event_id;
use crate::checkin::{
    self, MAX_BATCH, MAX_DEVICES_PER_EVENT, MAX_PAGE, Scan, ScanAnswer, Scanner, SyncFrom,
};
use crate::domain::access::runs_event;
use crate::domain::checkin::{Device, Direction, ScanResult};
use crate::domain::ticket::{MAX_CUTOFF_HOURS, MAX_TRANSFERS, TicketPolicy};

use crate::domain::now_millis;
use crate::domain::seat::Layout;
use crate::domain::ticket::TicketStatus;
use crate::error::OrdersError;
use crate::state::AppState;
use crate::store::ChangeCursor;

/// The longest gate name.
const MAX_GATE_LEN: usize = 40;
/// The longest nonce.
const MAX_NONCE_LEN: usize = 64;
/// How far ahead of the server's clock an offline scan's time may be (device clocks drift).
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// The event's layout and the scanner calling (401/403 otherwise).
async fn scanning(
    state: &AppState,
    headers: &HeaderMap,
    event: &str,
) -> Result<(Layout, Scanner), OrdersError> {
    let event_id = event_id(event)?;
    let layout = state.layouts.existing(&event_id).await?;
    let scanner = checkin::scanner(&state.checkin, headers, &layout).await?;
    Ok((layout, scanner))
}

/// The event's layout, if the caller runs it (403 otherwise).
async fn organizing(
    state: &AppState,
    caller: &AuthUser,
    event: &str,
) -> Result<Layout, OrdersError> {
    let event_id = event_id(event)?;
    let layout = state.layouts.existing(&event_id).await?;
    if !runs_event(caller, Some(&layout)) {
        return Err(OrdersError::NotOrganizer);
    }
    Ok(layout)
}

/// Every offending field of a scan, named under `prefix`.
fn check_scan(
    prefix: &str,
    pass: &str,
    gate: &str,
    problems: &mut std::collections::BTreeMap<String, Vec<String>>,
) {
    if pass.is_empty() || pass.len() > MAX_PASS_LEN {
        problems
            .entry(format!("{prefix}pass"))
            .or_default()
            .push(format!("must be 1 to {MAX_PASS_LEN} characters"));
    }
    if gate.trim().is_empty() || gate.chars().count() > MAX_GATE_LEN {
        problems
            .entry(format!("{prefix}gate"))
            .or_default()
            .push(format!("must be 1 to {MAX_GATE_LEN} characters"));
    }
}

/// An online scan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanRequest {
    /// The QR code's text.
    pass: String,
    /// Where it was scanned (1–40 characters), e.g. `North 2`.
    #[schema(example = "North 2")]
    gate: String,
    /// `in` (the default) or `out`.
    #[serde(default)]
    direction: Direction,
}

/// What the door answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanResponse {
    /// `entered`, `already_entered`, `exited`, `not_inside`, `revoked` (cancelled or
    /// transferred), `wrong_event` or `invalid` (not a genuine pass).
    result: ScanResult,
    /// The ticket and seat, when the pass is genuine and its ticket known.
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seat_id: Option<String>,
    /// When and where it first entered (with `entered`, `already_entered`, `exited`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    entered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_gate: Option<String>,
}

impl From<ScanAnswer> for ScanResponse {
    fn from(answer: ScanAnswer) -> Self {
        let outcome = answer.outcome;
        let shows_entry = matches!(
            outcome.result,
            ScanResult::Entered | ScanResult::AlreadyEntered | ScanResult::Exited
        );
        let pass: Option<Pass> = answer.pass;
        Self {
            result: outcome.result,
            ticket_id: pass.as_ref().map(|p| p.ticket_id.to_string()),
            seat_id: pass.map(|p| p.seat_id),
            entered_at: outcome
                .entered_at_ms
                .filter(|_| shows_entry)
                .map(format_millis),
            entry_gate: outcome.entry_gate.filter(|_| shows_entry),
        }
    }
}

/// Scans a pass at a gate. Two gates scanning one ticket at once: exactly one `entered`.
#[utoipa::path(post, path = "/checkin/events/{event_id}/scan", tag = "check-in",
    params(("event_id" = String, Path, description = "The event's id")),
    request_body = ScanRequest,
    responses(
        (status = 200, description = "The door's answer (a refused pass is a 200 too: `result` says why)", body = ScanResponse),
        (status = 400, description = "`VALIDATION_FAILED`, `INVALID_JSON`, `INVALID_ID`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid access token or device token (`Authorization: Bearer hfd_…`)", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer, an admin or one of its devices", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`: this scanner's scans per second", body = ErrorBody),
    ))]
pub async fn scan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event): Path<String>,
    JsonBody(request): JsonBody<ScanRequest>,
) -> Result<Response, OrdersError> {
    let (layout, scanner) = scanning(&state, &headers, &event).await?;
    checkin::limit_scans(&state.checkin, &scanner)?;
    let mut problems = Default::default();
    check_scan("", &request.pass, &request.gate, &mut problems);
    if !problems.is_empty() {
        return Err(holdfast_common::extract::fields_failed(problems).into());
    }
    let scan = Scan {
        pass: request.pass,
        gate: request.gate.trim().to_string(),
        direction: request.direction,
        at_ms: now_millis(),
    };
    let answer = checkin::scan(&state.checkin, &layout.event_id, &scan).await?;
    Ok(Json(ScanResponse::from(answer)).into_response())
}

/// One scan made offline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfflineScan {
    /// Unique per scan on this device (1–64 characters): uploading it again changes nothing.
    nonce: String,
    pass: String,
    gate: String,
    #[serde(default)]
    direction: Direction,
    /// When it was scanned (RFC 3339), by the device's clock.
    #[schema(format = DateTime, example = "2027-05-05T19:02:11Z")]
    scanned_at: String,
}

/// A batch of offline scans.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 10,000 scans.
    scans: Vec<OfflineScan>,
}

/// One scan's reconciliation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchResult {
    nonce: String,
    #[serde(flatten)]
    answer: ScanResponse,
    /// The ticket entered elsewhere or earlier than this scan: the earliest scan stands.
    conflict: bool,
}

/// The batch's answers, in its order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    results: Vec<BatchResult>,
}

/// Uploads scans made offline. Entries are reconciled by scan time (the earliest wins a
/// conflict, reported per item); uploading a batch again changes nothing and answers the same.
#[utoipa::path(post, path = "/checkin/events/{event_id}/scans", tag = "check-in",
    params(("event_id" = String, Path, description = "The event's id")),
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Each scan's result, in order", body = BatchResponse),
        (status = 400, description = "`VALIDATION_FAILED` (every offending scan named, nothing recorded), `INVALID_JSON`, `INVALID_ID`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
        (status = 413, description = "`BATCH_TOO_LARGE` (more than 10,000 scans) or `PAYLOAD_TOO_LARGE` (over 8 MiB)", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`: this scanner's batches per minute", body = ErrorBody),
    ))]
pub async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event): Path<String>,
    JsonBody(request): JsonBody<BatchRequest>,
) -> Result<Response, OrdersError> {
    let (layout, scanner) = scanning(&state, &headers, &event).await?;
    checkin::limit_batches(&state.checkin, &scanner)?;
    if request.scans.len() > MAX_BATCH {
        return Err(OrdersError::BatchTooLarge(MAX_BATCH));
    }
    let mut problems = std::collections::BTreeMap::new();
    if request.scans.is_empty() {
        problems.insert(
            "scans".to_string(),
            vec!["must hold 1 to 10000 scans".to_string()],
        );
    }
    let latest = now_millis() + CLOCK_SKEW_MS;
    let mut batch = Vec::with_capacity(request.scans.len());
    for (i, item) in request.scans.into_iter().enumerate() {
        let prefix = format!("scans[{i}].");
        check_scan(&prefix, &item.pass, &item.gate, &mut problems);
        if item.nonce.is_empty() || item.nonce.len() > MAX_NONCE_LEN {
            problems
                .entry(format!("{prefix}nonce"))
                .or_default()
                .push(format!("must be 1 to {MAX_NONCE_LEN} characters"));
        }
        let at_ms = match when::parse_millis(&item.scanned_at, &when::TimeZone::UTC) {
            Ok(at) if at <= latest => at,
            Ok(_) => {
                problems
                    .entry(format!("{prefix}scannedAt"))
                    .or_default()
                    .push("is in the future".into());
                0
            }
            Err(reason) => {
                problems
                    .entry(format!("{prefix}scannedAt"))
                    .or_default()
                    .push(reason.into());
                0
            }
        };
        let scan = Scan {
            pass: item.pass,
            gate: item.gate.trim().to_string(),
            direction: item.direction,
            at_ms,
        };
        batch.push((item.nonce, scan));
    }
    if !problems.is_empty() {
        return Err(holdfast_common::extract::fields_failed(problems).into());
    }
    let answers = checkin::reconcile(&state.checkin, &layout.event_id, &scanner, &batch).await?;
    let results = batch
        .into_iter()
        .zip(answers)
        .map(|((nonce, scan), answer)| {
            let conflict = answer.outcome.result == ScanResult::AlreadyEntered
                && (answer.outcome.entry_gate.as_deref() != Some(scan.gate.as_str())
                    || answer.outcome.entered_at_ms != Some(scan.at_ms));
            BatchResult {
                nonce,
                answer: ScanResponse::from(answer),
                conflict,
            }
        })
        .collect();
    Ok(Json(BatchResponse { results }).into_response())
}

/// `?since=` a version, or `?after=` a page's `next`; `limit` per page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SyncQuery {
    /// The `version` of the last sync: only tickets changed since (give none the first time).
    since: Option<i64>,
    /// A page's `next`, to read on.
    after: Option<String>,
    /// Tickets per page, 1 to 25,000 (the default).
    limit: Option<usize>,
}

/// A ticket as offline scanners keep it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncTicket {
    ticket_id: String,
    seat_id: String,
    /// Only a pass of this version enters.
    version: u32,
    /// `valid` or `revoked`.
    #[schema(example = "valid")]
    status: &'static str,
    /// Whether it has entered (at any gate).
    entered: bool,
}

/// A page of the download.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncResponse {
    event_id: String,
    /// Give as `since` next time.
    version: i64,
    /// Changed tickets, each in its current state (the same ticket may come again).
    tickets: Vec<SyncTicket>,
    /// Give as `after` to read the next page; `null` when this was the last.
    next: Option<String>,
}

/// The event's tickets and revocations for offline scanning; deltas with `since`.
#[utoipa::path(get, path = "/checkin/events/{event_id}/tickets", tag = "check-in",
    params(("event_id" = String, Path, description = "The event's id"), SyncQuery),
    responses(
        (status = 200, description = "A page of tickets changed since the version", body = SyncResponse),
        (status = 400, description = "`INVALID_QUERY`, `INVALID_ID`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn tickets(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event): Path<String>,
    query: Result<Query<SyncQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, OrdersError> {
    let Query(query) = query.map_err(|e| OrdersError::InvalidQuery(e.body_text()))?;
    let (layout, _scanner) = scanning(&state, &headers, &event).await?;
    let from = match (query.since, query.after) {
        (None, None) => SyncFrom::Start,
        (Some(since), None) if since >= 0 => SyncFrom::Since(since),
        (None, Some(after)) => SyncFrom::After(parse_cursor(&after)?),
        _ => {
            return Err(OrdersError::InvalidQuery(
                "give since (a non-negative version) or after, not both".into(),
            ));
        }
    };
    let limit = query.limit.unwrap_or(MAX_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(OrdersError::InvalidQuery(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    let page = checkin::sync(&state.checkin, &layout.event_id, &from, limit).await?;
    Ok(Json(SyncResponse {
        event_id: layout.event_id.to_string(),
        version: page.version,
        tickets: page
            .tickets
            .iter()
            .map(|t| SyncTicket {
                ticket_id: t.ticket_id.clone(),
                seat_id: t.seat_id.to_string(),
                version: t.version,
                status: if t.status == TicketStatus::Valid {
                    "valid"
                } else {
                    "revoked"
                },
                entered: t.entered_at_ms.is_some(),
            })
            .collect(),
        next: page
            .next
            .map(|c| format!("{}~{}", c.changed_at_ms, c.ticket_id)),
    })
    .into_response())
}

/// A page's `next`: `<changed at>~<ticket id>`.
fn parse_cursor(raw: &str) -> Result<ChangeCursor, OrdersError> {
    let bad = || OrdersError::InvalidQuery("after must be a page's next".into());
    let (at, ticket) = raw.split_once('~').ok_or_else(bad)?;
    let changed_at_ms = at.parse().map_err(|_| bad())?;
    uuid::Uuid::parse_str(ticket).map_err(|_| bad())?;
    Ok(ChangeCursor {
        changed_at_ms,
        ticket_id: ticket.to_string(),
    })
}

/// The door in figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DoorReport {
    event_id: String,
    #[serde(flatten)]
    counts: checkin::DoorCounts,
}

/// Live counts for the organizer: entered, not yet and revoked, by gate and by category.
#[utoipa::path(get, path = "/checkin/events/{event_id}/stats", tag = "check-in",
    params(("event_id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "At most a second old", body = DoorReport),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer nor an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn stats(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<Response, OrdersError> {
    let layout = organizing(&state, &caller, &event).await?;
    let counts = checkin::counts(&state.checkin, &layout).await?;
    Ok(Json(DoorReport {
        event_id: layout.event_id.to_string(),
        counts: checkin::DoorCounts::clone(&counts),
    })
    .into_response())
}

/// A new scanner device.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDevice {
    /// 1–60 characters, e.g. `North gate, phone 3`.
    name: String,
}

/// A scanner device.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    device_id: String,
    event_id: String,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
    revoked: bool,
    /// Its bearer token: shown once, when the device is made. It scans this event only.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl DeviceView {
    fn of(device: &Device, token: Option<String>) -> Self {
        Self {
            device_id: device.device_id.clone(),
            event_id: device.event_id.to_string(),
            name: device.name.clone(),
            created_at: format_millis(device.created_at_ms),
            revoked: device.revoked,
            token,
        }
    }
}

/// The event's devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    devices: Vec<DeviceView>,
}

/// Makes a scanner device for the event: its token scans this event and nothing else.
#[utoipa::path(post, path = "/checkin/events/{event_id}/devices", tag = "check-in",
    params(("event_id" = String, Path, description = "The event's id")),
    request_body = NewDevice,
    responses(
        (status = 201, description = "The device, with its token (shown this once)", body = DeviceView),
        (status = 400, description = "`VALIDATION_FAILED`, `INVALID_JSON`, `INVALID_ID`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not the event's organizer nor an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
        (status = 409, description = "`DEVICE_LIMIT`: 200 devices not revoked", body = ErrorBody),
    ))]
pub async fn add_device(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
    JsonBody(request): JsonBody<NewDevice>,
) -> Result<Response, OrdersError> {
    let layout = organizing(&state, &caller, &event).await?;
    let name = request.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(
            holdfast_common::extract::field_error("name", "must be 1 to 60 characters").into(),
        );
    }
    let (device, token) = Device::new(
        layout.event_id.clone(),
        name,
        caller.id().to_string(),
        now_millis(),
    );
    if !state
        .checkin
        .checkin
        .add_device(&device, MAX_DEVICES_PER_EVENT)
        .await?
    {
        return Err(OrdersError::TooManyDevices(MAX_DEVICES_PER_EVENT));
    }
    Ok((
        StatusCode::CREATED,
        Json(DeviceView::of(&device, Some(token))),
    )
        .into_response())
}

/// The event's scanner devices (without their tokens).
#[utoipa::path(get, path = "/checkin/events/{event_id}/devices", tag = "check-in",
    params(("event_id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "Oldest first, revoked ones too", body = DeviceList),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn devices(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<Response, OrdersError> {
    let layout = organizing(&state, &caller, &event).await?;
    let devices = state.checkin.checkin.devices_of(&layout.event_id).await?;
    Ok(Json(DeviceList {
        devices: devices.iter().map(|d| DeviceView::of(d, None)).collect(),
    })
    .into_response())
}

/// Revokes a scanner device: its token stops working within 2 seconds everywhere.
#[utoipa::path(delete, path = "/checkin/events/{event_id}/devices/{device_id}", tag = "check-in",
    params(("event_id" = String, Path, description = "The event's id"),
        ("device_id" = String, Path, description = "The device's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such device of this event, or revoked already", body = ErrorBody),
    ))]
pub async fn revoke_device(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((event, device_id)): Path<(String, String)>,
) -> Result<Response, OrdersError> {
    let layout = organizing(&state, &caller, &event).await?;
    if !checkin::revoke_device(&state.checkin, &layout.event_id, &device_id).await? {
        return Err(holdfast_common::error::ApiError::not_found("no such device").into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The event's ticket policy: re-entry at the door, and transfers.
#[utoipa::path(get, path = "/events/{event_id}/ticket-policy", tag = "tickets",
    params(("event_id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The policy (the defaults until set)", body = TicketPolicy),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
) -> Result<Json<TicketPolicy>, OrdersError> {
    let layout = organizing(&state, &caller, &event).await?;
    Ok(Json(
        checkin::policy(&state.checkin, &layout.event_id).await?,
    ))
}

/// Sets the event's ticket policy (the door follows within 2 seconds on every replica).
#[utoipa::path(put, path = "/events/{event_id}/ticket-policy", tag = "tickets",
    params(("event_id" = String, Path, description = "The event's id")),
    request_body = TicketPolicy,
    responses(
        (status = 200, description = "The policy as set", body = TicketPolicy),
        (status = 400, description = "`VALIDATION_FAILED` (`maxTransfers` over 10, `transferCutoffHours` over 8760), `INVALID_JSON`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn set_policy(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(event): Path<String>,
    JsonBody(policy): JsonBody<TicketPolicy>,
) -> Result<Json<TicketPolicy>, OrdersError> {
    let layout = organizing(&state, &caller, &event).await?;
    let mut problems = std::collections::BTreeMap::new();
    if policy.max_transfers > MAX_TRANSFERS {
        problems.insert(
            "maxTransfers".to_string(),
            vec![format!("must be 0 to {MAX_TRANSFERS}")],
        );
    }
    if policy.transfer_cutoff_hours > MAX_CUTOFF_HOURS {
        problems.insert(
            "transferCutoffHours".to_string(),
            vec![format!("must be 0 to {MAX_CUTOFF_HOURS}")],
        );
    }
    if !problems.is_empty() {
        return Err(holdfast_common::extract::fields_failed(problems).into());
    }
    checkin::set_policy(&state.checkin, &layout.event_id, policy).await?;
    Ok(Json(policy))
}
