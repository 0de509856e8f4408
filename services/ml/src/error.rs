//! The ml service's error type and how each case is answered.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::error::ApiError;
use holdfast_common::extract::field_error;

#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// A query parameter that is missing or out of range (400 `VALIDATION_FAILED`).
    #[error("{field}: {message}")]
    InvalidParameter {
        field: &'static str,
        message: &'static str,
    },
    /// A user's recommendations asked for without a token (401 `UNAUTHENTICATED`).
    #[error(
        "recommendations for a user need that user's token; without one, leave out userId for the popular list"
    )]
    Unauthenticated,
    /// Another user's recommendations, asked for by someone who is not an admin (403).
    #[error("recommendations for another user are only for admins")]
    NotYours,
    /// An event the model has not seen (404).
    #[error("no such event")]
    UnknownEvent,
}

impl IntoResponse for MlError {
    fn into_response(self) -> Response {
        let error = match self {
            Self::InvalidParameter { field, message } => field_error(field, message),
            Self::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                self.to_string(),
            ),
            Self::NotYours => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", self.to_string()),
            Self::UnknownEvent => ApiError::not_found(self.to_string()),
        };
        error.into_response()
    }
}
