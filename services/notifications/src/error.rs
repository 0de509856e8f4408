//! The notifications service's error type: its errors end in logs, in the delivery log's
//! `lastError`, in start-up failures, and in the answers of the admin routes ([`crate::http`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::docstore::StoreError;
use holdfast_common::error::ApiError;
use holdfast_common::extract::field_error;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] holdfast_common::bus::BusError),
    /// `SMTP_URL` or `MAIL_FROM` cannot be used.
    #[error("{0}")]
    Config(String),
    /// One mail could not be sent; `permanent` when trying again cannot help (an address
    /// that is not one).
    #[error("{reason}")]
    Send { reason: String, permanent: bool },
    /// A query parameter or body field out of range (400 `VALIDATION_FAILED`).
    #[error("{field}: {message}")]
    InvalidParameter {
        field: &'static str,
        message: &'static str,
    },
    /// No dead letter or mail with that id (404).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// A dead letter that is not waiting, or a mail that is not dead (409 `NOT_WAITING`).
    #[error("{0}")]
    NotWaiting(&'static str),
}

impl IntoResponse for NotifyError {
    fn into_response(self) -> Response {
        let error = match &self {
            Self::InvalidParameter { field, message } => field_error(field, message),
            Self::NotFound(_) => ApiError::not_found(self.to_string()),
            Self::NotWaiting(_) => {
                ApiError::new(StatusCode::CONFLICT, "NOT_WAITING", self.to_string())
            }
            Self::Bus(cause) => {
                tracing::warn!(%cause, "the bus refused a re-drive");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "BUS_UNAVAILABLE",
                    "the message bus cannot take the message now; try again",
                )
            }
            Self::Store(cause) => ApiError::internal(cause),
            Self::Config(_) | Self::Send { .. } => ApiError::internal(&self),
        };
        error.into_response()
    }
}

impl NotifyError {
    /// A failure to send that a later attempt may overcome.
    pub fn transient(reason: impl ToString) -> Self {
        Self::Send {
            reason: reason.to_string(),
            permanent: false,
        }
    }

    /// A failure to send that no retry can overcome.
    pub fn permanent(reason: impl ToString) -> Self {
        Self::Send {
            reason: reason.to_string(),
            permanent: true,
        }
    }

    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Send {
                permanent: true,
                ..
            }
        )
    }
}
