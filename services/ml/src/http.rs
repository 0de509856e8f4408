//! `GET /recs` and `GET /related` (public paths `/api/ml/recs`, `/api/ml/related`).

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use holdfast_common::error::ApiError;
use holdfast_common::extract::field_error;
use serde_json::{Value, json};

use crate::AppState;

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/recs", get(recs))
        .route("/related", get(related))
}

fn required<'q>(params: &'q HashMap<String, String>, name: &str) -> Result<&'q str, ApiError> {
    params
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 100)
        .ok_or_else(|| field_error(name, "required, at most 100 characters"))
}

fn limit(params: &HashMap<String, String>) -> Result<usize, ApiError> {
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
            .ok_or_else(|| field_error("limit", "must be 1 to 50")),
    }
}

/// `GET /recs?userId=&limit=`: upcoming events for a user.
async fn recs(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let user_id = required(&params, "userId")?;
    let items = state.model.recommend(
        user_id,
        limit(&params)?,
        holdfast_common::when::now_millis(),
    );
    Ok(Json(json!({ "userId": user_id, "items": items })))
}

/// `GET /related?eventId=&limit=`: upcoming events like this one.
async fn related(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let event_id = required(&params, "eventId")?;
    let limit = limit(&params)?;
    if !state.model.knows_event(event_id) {
        return Err(ApiError::not_found("no such event"));
    }
    let items = state
        .model
        .related(event_id, limit, holdfast_common::when::now_millis());
    Ok(Json(json!({ "eventId": event_id, "items": items })))
}
