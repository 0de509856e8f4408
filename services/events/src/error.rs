//! The events service's error type and how each case is answered.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::error::ApiError;
use holdfast_common::extract::{field_error, fields_failed};

use crate::domain::event::FieldProblems;

use crate::store::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("malformed event id: expected 24 hexadecimal characters")]
    InvalidId,
    #[error("no such event")]
    NotFound,
    #[error("only the event's organizer or an admin may change it")]
    NotOwner,
    #[error("invalid event")]
    Invalid(FieldProblems),
    #[error("invalid query parameter {field}: {message}")]
    InvalidParameter {
        field: &'static str,
        message: &'static str,
    },
    #[error("the seat layout cannot change: seats of this event are held or sold")]
    LayoutLocked,
    #[error("the event cannot be deleted: seats of it are held or sold")]
    HasOrders,
    #[error("the seat layout is being changed by another request; retry shortly")]
    LayoutBusy,
    #[error(transparent)]
    Orders(#[from] crate::layout_lock::OrdersUnavailable),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("event store: {0}")]
    Store(#[from] RepoError),
}

impl From<FieldProblems> for EventsError {
    fn from(problems: FieldProblems) -> Self {
        Self::Invalid(problems)
    }
}

impl IntoResponse for EventsError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let error = match self {
            Self::InvalidId => ApiError::bad_request("INVALID_ID", message),
            Self::NotFound => ApiError::not_found(message),
            Self::NotOwner => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", message),
            Self::Invalid(fields) => fields_failed(fields),
            Self::InvalidParameter { field, message } => field_error(field, message),
            Self::LayoutLocked => ApiError::new(StatusCode::CONFLICT, "LAYOUT_LOCKED", message),
            Self::HasOrders => ApiError::new(StatusCode::CONFLICT, "EVENT_HAS_ORDERS", message),
            Self::LayoutBusy => ApiError::new(StatusCode::CONFLICT, "LAYOUT_CHANGING", message),
            Self::Orders(cause) => {
                tracing::error!(%cause, "orders service unreachable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UPSTREAM_UNAVAILABLE",
                    "cannot check the event's orders right now; retry shortly",
                )
            }
            Self::Api(error) => error,
            Self::Store(cause) => ApiError::internal(cause),
        };
        error.into_response()
    }
}
