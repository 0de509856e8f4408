//! The auth service's error type and how each case is answered.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::TokenError;
use holdfast_common::error::ApiError;
use holdfast_common::kv::KvError;

use crate::store::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("an account with this email already exists")]
    UserExists,
    #[error("wrong email or password")]
    InvalidCredentials,
    /// Too many failed logins in a row for this account (429 `LOGIN_THROTTLED`).
    #[error("too many failed logins for this account; retry in {} s", .0.as_secs().max(1))]
    LoginThrottled(std::time::Duration),
    #[error("this refresh token was already used; the session has been revoked")]
    RefreshReused,
    #[error("the refresh token is missing, expired or revoked")]
    InvalidRefresh,
    #[error("the session has ended; log in again")]
    SessionEnded,
    #[error("no such user")]
    UserNotFound,
    #[error("malformed user id")]
    InvalidId,
    #[error("{0}")]
    Forbidden(&'static str),
    /// Already in the API's error shape (e.g. a field that failed a rule).
    #[error(transparent)]
    Rejected(#[from] ApiError),
    #[error("user store: {0}")]
    Store(#[from] RepoError),
    #[error("session store: {0}")]
    Sessions(#[from] KvError),
    #[error("token: {0}")]
    Token(#[from] TokenError),
    #[error("password hashing: {0}")]
    Hashing(String),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let error = match self {
            Self::UserExists => ApiError::new(StatusCode::CONFLICT, "USER_EXISTS", message),
            Self::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", message)
            }
            Self::LoginThrottled(wait) => {
                let mut response =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "LOGIN_THROTTLED", message)
                        .into_response();
                let seconds = wait.as_millis().div_ceil(1000).max(1);
                if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string()) {
                    response
                        .headers_mut()
                        .insert(axum::http::header::RETRY_AFTER, value);
                }
                return response;
            }
            Self::RefreshReused => {
                ApiError::new(StatusCode::UNAUTHORIZED, "REFRESH_REUSED", message)
            }
            Self::InvalidRefresh => {
                ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN", message)
            }
            Self::SessionEnded => ApiError::new(StatusCode::UNAUTHORIZED, "SESSION_ENDED", message),
            Self::UserNotFound => ApiError::not_found(message),
            Self::InvalidId => ApiError::bad_request("INVALID_ID", message),
            Self::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", message),
            Self::Rejected(error) => error,
            Self::Sessions(KvError::Unavailable(cause)) => {
                tracing::error!(%cause, "session store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "sessions are temporarily unavailable",
                )
            }
            other => ApiError::internal(other),
        };
        error.into_response()
    }
}
