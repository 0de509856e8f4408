//! `GET /recs` and `GET /related` (public paths `/api/ml/recs`, `/api/ml/related`).

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use holdfast_common::error::ErrorBody;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::MlError;

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 50;

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
    documented().into_openapi()
}

/// Recommended events for a user.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recommendations {
    user_id: String,
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
    params
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 100)
        .ok_or(MlError::InvalidParameter {
            field: name,
            message: "required, at most 100 characters",
        })
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
#[utoipa::path(get, path = "/recs", tag = "recommendations",
    params(
        ("userId" = String, Query, description = "The user (1–100 characters)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "At most this many (default 10)"),
    ),
    responses(
        (status = 200, description = "Recommendations", body = Recommendations),
        (status = 400, description = "`VALIDATION_FAILED`: `userId` missing or too long, bad `limit`", body = ErrorBody),
    ))]
async fn recs(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Recommendations>, MlError> {
    let user_id = required(&params, "userId")?;
    let items = state.model.recommend(
        user_id,
        limit(&params)?,
        holdfast_common::when::now_millis(),
    );
    Ok(Json(Recommendations {
        user_id: user_id.to_string(),
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
