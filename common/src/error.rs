//! The one error body every Holdfast process answers with.
//!
//! Each service has its own error enum; it turns into an [`ApiError`], which renders
//! `{error, code, requestId, details?}`. The request id is filled in by
//! [`crate::middleware::normalize_errors`], which also turns the plain-text rejections of axum
//! and tower (404, 405, 413, 415, …) into the same body, so no client ever sees another shape.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// The JSON body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "error": "seats R1-S2 are no longer available",
    "code": "CONFLICT_SEATS",
    "requestId": "5d0f7c1e-8c1a-4d8e-9f55-2f1a3c4b5d6e",
    "details": {"conflicts": ["R1-S2"]},
    "conflicts": ["R1-S2"]
}))]
pub struct ErrorBody {
    /// A message for people.
    pub error: String,
    /// A stable machine code (`VALIDATION_FAILED`, `CONFLICT_SEATS`, …).
    pub code: String,
    /// The request's `X-Request-Id`, to quote when asking for help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Structured detail, e.g. `fields` (validation) or `conflicts` (seats).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<Value>,
    /// Top-level copies of detail fields that existing clients read (e.g. `conflicts`).
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(ignore)]
    pub extra: serde_json::Map<String, Value>,
}

/// An error ready to be answered: status, machine code, message and optional details.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: errors travel in `Result`s everywhere, which should stay small.
    pub body: Box<ErrorBody>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                error: message.into(),
                code: code.to_string(),
                request_id: None,
                details: None,
                extra: serde_json::Map::new(),
            }),
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.body.details = Some(details);
        self
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// A failure that is ours, not the caller's. The cause is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        )
    }

    /// The default code and message for a status that carried no body of ours.
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => ("BAD_REQUEST", "the request is malformed"),
            StatusCode::UNAUTHORIZED => ("UNAUTHENTICATED", "authentication required"),
            StatusCode::FORBIDDEN => ("FORBIDDEN", "not allowed"),
            StatusCode::NOT_FOUND => ("NOT_FOUND", "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => ("METHOD_NOT_ALLOWED", "method not allowed here"),
            StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", "request body too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "UNSUPPORTED_MEDIA_TYPE",
                "expected a body with Content-Type: application/json",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => {
                ("UNPROCESSABLE", "the request cannot be processed")
            }
            StatusCode::TOO_MANY_REQUESTS => ("RATE_LIMITED", "too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => ("UNAVAILABLE", "service unavailable"),
            StatusCode::GATEWAY_TIMEOUT => ("UPSTREAM_TIMEOUT", "upstream timed out"),
            s if s.is_server_error() => ("INTERNAL", "internal error"),
            _ => ("ERROR", "request failed"),
        };
        Self::new(status, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.body.code,
            self.body.error
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(&self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // Lets the error middleware add the request id without re-parsing the JSON.
        response.extensions_mut().insert(*self.body);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_documented_fields() {
        let mut err = ApiError::new(StatusCode::CONFLICT, "CONFLICT_SEATS", "taken")
            .with_details(serde_json::json!({"conflicts": ["R1-S2"]}));
        err.body.request_id = Some("abc".into());
        err.body
            .extra
            .insert("conflicts".into(), serde_json::json!(["R1-S2"]));
        let json = serde_json::to_value(&err.body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "error": "taken", "code": "CONFLICT_SEATS", "requestId": "abc",
                "details": {"conflicts": ["R1-S2"]}, "conflicts": ["R1-S2"]
            })
        );
    }

    #[test]
    fn unauthorized_carries_www_authenticate() {
        let res = ApiError::from_status(StatusCode::UNAUTHORIZED).into_response();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::internal("disk on fire at /var/secret");
        assert_eq!(err.body.error, "internal error");
        assert_eq!(err.body.code, "INTERNAL");
    }
}
