//! Idempotent requests: an `Idempotency-Key` (per user, 1–255 visible ASCII characters) makes a
//! request run at most once within `IDEMPOTENCY_TTL_SECONDS`.
//!
//! - The first answer is stored with what the request wrote, in the same transaction (the
//!   order store's `idempotency` records, one layout on both adapters), so a retry with the same
//!   body gets it back, with `Idempotent-Replayed: true`, even after a crash right after commit.
//! - The same key with another body (told apart by a fingerprint of the request) gets 422.
//! - While the first attempt runs, an in-flight marker `idem:<user>:<key>` in the TTL store
//!   (expiring by itself if the process dies) makes a concurrent retry get 409; a failed attempt
//!   removes it, so the key can be used again.

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::now_millis;
use crate::error::OrdersError;
use crate::store::IdempotencyStore;
use crate::store::IdempotentResponse;
use holdfast_common::kv::TtlStore;
use std::sync::Arc;

/// How long an attempt may hold its in-flight marker; longer than any attempt takes.
const IN_FLIGHT: Duration = Duration::from_secs(60);

/// What idempotent requests use: the TTL store for the in-flight marker, the order store's
/// idempotency records for the answers.
#[derive(Clone)]
pub struct Ports {
    pub kv: Arc<dyn TtlStore>,
    pub records: Arc<dyn IdempotencyStore>,
}

/// The request's `Idempotency-Key`, if it sent a valid one.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, OrdersError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| OrdersError::InvalidIdempotencyKey)?;
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(OrdersError::InvalidIdempotencyKey);
    }
    Ok(Some(key.to_string()))
}

/// One user's key and the fingerprint of the request sent with it.
#[derive(Debug, Clone)]
pub struct Once {
    user_id: String,
    key: String,
    request_hash: String,
}

impl Once {
    pub fn new(user_id: &str, key: String, request_hash: String) -> Self {
        Self {
            user_id: user_id.to_string(),
            key,
            request_hash,
        }
    }

    fn marker(&self) -> String {
        format!("idem:{}:{}", self.user_id, self.key)
    }

    /// Runs `attempt` unless an answer to the key is stored (then replays it) or another attempt
    /// with the key is running (then 409).
    pub async fn run<F, Fut>(&self, ports: &Ports, attempt: F) -> Result<Response, OrdersError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Response, OrdersError>>,
    {
        if let Some(response) = self.stored_answer(ports).await? {
            return Ok(response);
        }
        let marker = self.marker();
        let kv = &ports.kv;
        if !kv
            .set_if_absent(&marker, &self.request_hash, IN_FLIGHT)
            .await?
        {
            // Finished in the meantime? Then answer as a replay; otherwise it is still running.
            if let Some(response) = self.stored_answer(ports).await? {
                return Ok(response);
            }
            return match kv.get(&marker).await? {
                Some(other) if other != self.request_hash => Err(OrdersError::IdempotencyKeyReused),
                _ => Err(OrdersError::IdempotencyInProgress),
            };
        }
        // The first attempt may have finished between our look and taking the marker: look
        // again now that no other attempt can run.
        let answer = match self.stored_answer(ports).await {
            Ok(Some(response)) => Ok(response),
            Ok(None) => attempt().await,
            Err(error) => Err(error),
        };
        // Forget the marker whatever happened: a failed attempt may be retried with the key.
        let _ = kv.delete(&marker).await;
        answer
    }

    /// The stored answer to the key, replayed if the request matches, refused if it does not.
    pub async fn stored_answer(&self, ports: &Ports) -> Result<Option<Response>, OrdersError> {
        match ports
            .records
            .idempotent_response(&self.user_id, &self.key, now_millis())
            .await?
        {
            Some(stored) if stored.request_hash == self.request_hash => Ok(Some(replay(&stored))),
            Some(_) => Err(OrdersError::IdempotencyKeyReused),
            None => Ok(None),
        }
    }

    /// The record of `status` and `body` to store with what the request wrote at `now_ms`.
    pub fn answer(
        &self,
        status: StatusCode,
        body: String,
        now_ms: i64,
        ttl: Duration,
    ) -> IdempotentResponse {
        IdempotentResponse {
            key: self.key.clone(),
            request_hash: self.request_hash.clone(),
            status: status.as_u16(),
            body,
            created_at_ms: now_ms,
            expires_at_ms: now_ms
                .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

fn replay(stored: &IdempotentResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
