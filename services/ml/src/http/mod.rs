//! `GET /recs` and `GET /related` (public paths `/api/ml/recs`, `/api/ml/related`).

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use holdfast_common::auth::MaybeAuthUser;
use holdfast_common::error::ErrorBody;
use holdfast_common::openapi::{Caller, document_callers};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::path::HttpMethod;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::MlError;

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 50;

/// Who the routes that are not open to anyone answer (see [`Caller`]).
const CALLERS: &[(HttpMethod, &str, Caller)] =
    &[(HttpMethod::Get, "/recs", Caller::SignedInOrAnonymous)];

/// The public routes, each registered with its OpenAPI description, so that a route cannot
/// exist without being documented.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(recs))
        .routes(routes!(related))
}

pub fn router() -> Router<AppState> {
    documented().into()
}

/// The OpenAPI description of [`router`] (the gateway serves it under `/api/ml`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented().into_openapi();
    document_callers(&mut doc, CALLERS);
    doc
}

/// Recommended events for a user.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recommendations {
    /// Whose recommendations these are; `null` for an anonymous caller's popular list.
    user_id: Option<String>,
    /// Event ids, best first; only upcoming events.
    items: Vec<String>,
}

/// Events like another.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Related {
    event_id: String,
    /// Event ids, most alike first; only upcoming events.
    items: Vec<String>,
}

fn required<'q>(
    params: &'q HashMap<String, String>,
    name: &'static str,
) -> Result<&'q str, MlError> {
    optional(params, name)?.ok_or(MlError::InvalidParameter {
        field: name,
        message: "required, at most 100 characters",
    })
}

/// The parameter when given (blank counts as absent); at most 100 characters.
fn optional<'q>(
    params: &'q HashMap<String, String>,
    name: &'static str,
) -> Result<Option<&'q str>, MlError> {
    match params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        Some(value) if value.len() > 100 => Err(MlError::InvalidParameter {
            field: name,
            message: "at most 100 characters",
        }),
        value => Ok(value),
    }
}

fn limit(params: &HashMap<String, String>) -> Result<usize, MlError> {
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
            .ok_or(MlError::InvalidParameter {
                field: "limit",
                message: "must be 1 to 50",
            }),
    }
}

/// Upcoming events for a user, from what they and people like them bought.
///
/// Recommendations leave out what the user bought and weigh what similar buyers bought, so
/// they reveal purchases: a user's list needs that user's token (or an admin's). `userId`
/// defaults to the caller; an anonymous caller gets the popular list.
#[utoipa::path(get, path = "/recs", tag = "recommendations",
    params(
        ("userId" = Option<String>, Query, description = "The user (1–100 characters); the caller when absent. Another user's needs an admin's token"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "At most this many (default 10)"),
    ),
    responses(
        (status = 200, description = "Recommendations; for an anonymous caller the popular list (`userId` null)", body = Recommendations),
        (status = 400, description = "`VALIDATION_FAILED`: `userId` too long, bad `limit`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: a `userId` asked for without a token, or a bad token", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: another user's recommendations, asked for by someone who is not an admin", body = ErrorBody),
    ))]
async fn recs(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Recommendations>, MlError> {
    let asked = optional(&params, "userId")?;
    let limit = limit(&params)?;
    let user_id = match (&caller, asked) {
        (None, None) => None,
        (None, Some(_)) => return Err(MlError::Unauthenticated),
        (Some(caller), None) => Some(caller.id()),
        (Some(caller), Some(asked)) if asked == caller.id() || caller.is_admin() => Some(asked),
        (Some(_), Some(_)) => return Err(MlError::NotYours),
    };
    let now = holdfast_common::when::now_millis();
    let items = match user_id {
        Some(user_id) => state.model.recommend(user_id, limit, now),
        None => state.model.popular(limit, now),
    };
    Ok(Json(Recommendations {
        user_id: user_id.map(str::to_string),
        items,
    }))
}

/// Upcoming events like this one.
#[utoipa::path(get, path = "/related", tag = "recommendations",
    params(
        ("eventId" = String, Query, description = "The event (1–100 characters)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "At most this many (default 10)"),
    ),
    responses(
        (status = 200, description = "Related events", body = Related),
        (status = 400, description = "`VALIDATION_FAILED`: `eventId` missing or too long, bad `limit`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: an event the model does not know", body = ErrorBody),
    ))]
async fn related(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Related>, MlError> {
    let event_id = required(&params, "eventId")?;
    let limit = limit(&params)?;
    if !state.model.knows_event(event_id) {
        return Err(MlError::UnknownEvent);
    }
    let items = state
        .model
        .related(event_id, limit, holdfast_common::when::now_millis());
    Ok(Json(Related {
        event_id: event_id.to_string(),
        items,
    }))
}
