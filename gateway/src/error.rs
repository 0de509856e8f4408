//! The gateway's error type: what can go wrong between a client and an upstream.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the {0} service is unavailable")]
    UpstreamUnavailable(&'static str),
    #[error("the {0} service did not answer in time")]
    UpstreamTimeout(&'static str),
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::UpstreamUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "UPSTREAM_UNAVAILABLE")
            }
            Self::UpstreamTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT"),
            Self::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        };
        ApiError::new(status, code, self.to_string()).into_response()
    }
}
