//! The admin routes (public paths under `/api/notifications`): the bus's dead letters, listed
//! and re-driven to their queues, and the mails given up on after their last attempt, listed
//! and retried with a fresh set of attempts.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use holdfast_common::auth::{Admin, TokenKeys};
use holdfast_common::error::ErrorBody;
use holdfast_common::openapi::{Caller, document_callers};
use holdfast_common::when::{format_millis, now_millis};
use serde::Serialize;
use tokio::sync::Notify;
use utoipa::ToSchema;
use utoipa::openapi::path::HttpMethod;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dead_letters::DeadLetters;
use crate::error::NotifyError;
use crate::store::DeliveryLog;
use crate::store::dead_letters::{After, DeadLetterRecord, DeadLetterStatus};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

/// What the admin routes work on.
#[derive(Clone)]
pub struct AdminState {
    pub dead_letters: Arc<DeadLetters>,
    pub mails: Arc<dyn DeliveryLog>,
    /// Wakes the sender when a mail is revived.
    pub wake: Arc<Notify>,
    pub keys: Arc<TokenKeys>,
}

holdfast_common::token_keys_in!(AdminState, keys);

/// Every route needs an admin's token.
const CALLERS: &[(HttpMethod, &str, Caller)] = &[
    (HttpMethod::Get, "/dead-letters", Caller::SignedIn),
    (
        HttpMethod::Post,
        "/dead-letters/{id}/redrive",
        Caller::SignedIn,
    ),
    (HttpMethod::Get, "/mails/dead", Caller::SignedIn),
    (
        HttpMethod::Post,
        "/mails/{messageId}/retry",
        Caller::SignedIn,
    ),
];

fn documented() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list_dead_letters))
        .routes(routes!(redrive))
        .routes(routes!(list_dead_mails))
        .routes(routes!(retry_mail))
}

pub fn router(state: AdminState) -> Router {
    let router: Router<AdminState> = documented().into();
    router.with_state(state)
}

/// The OpenAPI description of [`router`] (the gateway serves it under `/api/notifications`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented().into_openapi();
    document_callers(&mut doc, CALLERS);
    doc
}

/// A message the bus gave up on.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    id: String,
    /// The work queue it left, and goes back to when re-driven.
    queue: String,
    routing_key: String,
    /// `delivery_limit` (its handling failed at every delivery), `undecodable: …`, or what
    /// its consumer said.
    reason: String,
    /// `WAITING` or `REDRIVEN`.
    status: String,
    message_id: Option<String>,
    /// How many times it died (a re-driven message can die again).
    deaths: u32,
    /// When it last died (RFC 3339).
    dead_at: String,
    redriven_at: Option<String>,
    /// The message as it travelled (JSON, unless it was undecodable).
    body: String,
}

impl From<DeadLetterRecord> for DeadLetterView {
    fn from(r: DeadLetterRecord) -> Self {
        Self {
            id: r.id,
            queue: r.letter.queue,
            routing_key: r.letter.routing_key,
            reason: r.letter.reason,
            status: r.status.as_str().into(),
            message_id: r.letter.message_id,
            deaths: r.deaths,
            dead_at: format_millis(r.dead_at_ms),
            redriven_at: r.redriven_at_ms.map(format_millis),
            body: r.letter.body,
        }
    }
}

/// A page of dead letters.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterPage {
    /// Newest death first.
    items: Vec<DeadLetterView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// A mail given up on after its last attempt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadMailView {
    /// The id of the bus message the mail was made from (`<id>.<n>` for its further mails).
    message_id: String,
    routing_key: String,
    recipient: String,
    subject: String,
    /// `DEAD`, or `PENDING` once retried.
    status: String,
    attempts: u32,
    last_error: Option<String>,
    /// When it was made (RFC 3339).
    created_at: String,
}

impl From<crate::store::Delivery> for DeadMailView {
    fn from(d: crate::store::Delivery) -> Self {
        Self {
            message_id: d.message_id,
            routing_key: d.routing_key,
            recipient: d.recipient,
            subject: d.subject,
            status: d.status.as_str().into(),
            attempts: d.attempts,
            last_error: d.last_error,
            created_at: format_millis(d.created_at_ms),
        }
    }
}

/// A page of dead mails.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadMailPage {
    /// Newest first.
    items: Vec<DeadMailView>,
    /// Pass as `before` for the next page; `null` on the last.
    next_before: Option<i64>,
}

fn limit(params: &HashMap<String, String>) -> Result<usize, NotifyError> {
    match params
        .get("limit")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or(NotifyError::InvalidParameter {
                field: "limit",
                message: "must be 1 to 200",
            }),
    }
}

/// A page cursor: `<deadAtMs>.<id>`.
fn cursor(params: &HashMap<String, String>) -> Result<Option<After>, NotifyError> {
    let Some(raw) = params
        .get("cursor")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    raw.split_once('.')
        .and_then(|(at, id)| {
            let valid_id =
                (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit());
            Some(After {
                dead_at_ms: at.parse().ok()?,
                id: id.to_string(),
            })
            .filter(|_| valid_id)
        })
        .map(Some)
        .ok_or(NotifyError::InvalidParameter {
            field: "cursor",
            message: "must be a nextCursor this route answered",
        })
}

/// The bus's dead letters, newest death first.
#[utoipa::path(get, path = "/dead-letters", tag = "operations",
    params(
        ("status" = Option<String>, Query, description = "`WAITING` or `REDRIVEN`; both when absent"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "At most this many (default 50)"),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadLetterPage),
        (status = 400, description = "`VALIDATION_FAILED`: bad `status`, `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not an admin", body = ErrorBody),
    ))]
async fn list_dead_letters(
    State(state): State<AdminState>,
    _admin: Admin,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<DeadLetterPage>, NotifyError> {
    let status = match params
        .get("status")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(raw) => Some(
            DeadLetterStatus::parse(raw).ok_or(NotifyError::InvalidParameter {
                field: "status",
                message: "must be WAITING or REDRIVEN",
            })?,
        ),
    };
    let (limit, after) = (limit(&params)?, cursor(&params)?);
    let records = state
        .dead_letters
        .log
        .list(status, after.as_ref(), limit)
        .await?;
    let next_cursor = (records.len() == limit)
        .then(|| records.last().map(|r| format!("{}.{}", r.dead_at_ms, r.id)))
        .flatten();
    Ok(Json(DeadLetterPage {
        items: records.into_iter().map(DeadLetterView::from).collect(),
        next_cursor,
    }))
}

/// Sends a waiting dead letter back to the queue it left (that queue alone), with a fresh
/// delivery count. Its consumer takes it as a redelivery: handling is idempotent by message id.
#[utoipa::path(post, path = "/dead-letters/{id}/redrive", tag = "operations",
    params(("id" = String, Path, description = "The dead letter")),
    responses(
        (status = 200, description = "Re-driven", body = DeadLetterView),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such dead letter", body = ErrorBody),
        (status = 409, description = "`NOT_WAITING`: re-driven already", body = ErrorBody),
        (status = 503, description = "`BUS_UNAVAILABLE`: the bus cannot take it now", body = ErrorBody),
    ))]
async fn redrive(
    State(state): State<AdminState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterView>, NotifyError> {
    let record = state.dead_letters.redrive(&id).await?;
    Ok(Json(record.into()))
}

/// The mails given up on after their last attempt, newest first.
#[utoipa::path(get, path = "/mails/dead", tag = "operations",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "At most this many (default 50)"),
        ("before" = Option<i64>, Query, description = "The `nextBefore` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of dead mails", body = DeadMailPage),
        (status = 400, description = "`VALIDATION_FAILED`: bad `limit` or `before`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not an admin", body = ErrorBody),
    ))]
async fn list_dead_mails(
    State(state): State<AdminState>,
    _admin: Admin,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<DeadMailPage>, NotifyError> {
    let limit = limit(&params)?;
    let before = match params
        .get("before")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .map_err(|_| NotifyError::InvalidParameter {
                    field: "before",
                    message: "must be a nextBefore this route answered",
                })?,
        ),
    };
    let mails = state.mails.dead(before, limit).await?;
    let next_before = (mails.len() == limit)
        .then(|| mails.last().map(|m| m.created_at_ms))
        .flatten();
    Ok(Json(DeadMailPage {
        items: mails.into_iter().map(DeadMailView::from).collect(),
        next_before,
    }))
}

/// Gives a dead mail a fresh set of attempts, starting now.
#[utoipa::path(post, path = "/mails/{messageId}/retry", tag = "operations",
    params(("messageId" = String, Path, description = "The mail (its bus message id)")),
    responses(
        (status = 200, description = "Pending again", body = DeadMailView),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such mail", body = ErrorBody),
        (status = 409, description = "`NOT_WAITING`: the mail is not dead", body = ErrorBody),
    ))]
async fn retry_mail(
    State(state): State<AdminState>,
    _admin: Admin,
    Path(message_id): Path<String>,
) -> Result<Json<DeadMailView>, NotifyError> {
    let mut mail = state
        .mails
        .get(&message_id)
        .await?
        .ok_or(NotifyError::NotFound("mail"))?;
    if !state.mails.revive(&message_id, now_millis()).await? {
        return Err(NotifyError::NotWaiting("this mail is not dead"));
    }
    state.wake.notify_one();
    tracing::info!(%message_id, "dead mail retried");
    // What the retry made of it (the sender may have claimed it already).
    mail.status = crate::store::DeliveryStatus::Pending;
    mail.attempts = 0;
    Ok(Json(mail.into()))
}
