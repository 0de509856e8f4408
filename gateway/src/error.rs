//! The gateway's error type: what can go wrong between a client and an upstream.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the {0} service is unavailable")]
    UpstreamUnavailable(&'static str),
    /// One of several replicas of the service went away (refused the connection, or closed
    /// it mid-call): passed over from now on, and not counted against the service's circuit.
    #[error("a replica of the {0} service went away; try again")]
    ReplicaUnavailable(&'static str),
    #[error("the {0} service did not answer in time")]
    UpstreamTimeout(&'static str),
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("the {upstream} service is failing; the gateway stopped calling it for now")]
    CircuitOpen {
        upstream: &'static str,
        retry_after: u64,
    },
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        if let Self::CircuitOpen { retry_after, .. } = self {
            let mut response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "CIRCUIT_OPEN",
                self.to_string(),
            )
            .into_response();
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after.into());
            return response;
        }
        let (status, code) = match &self {
            Self::UpstreamUnavailable(_) | Self::ReplicaUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "UPSTREAM_UNAVAILABLE")
            }
            Self::UpstreamTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT"),
            Self::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Self::CircuitOpen { .. } => (StatusCode::SERVICE_UNAVAILABLE, "CIRCUIT_OPEN"),
        };
        ApiError::new(status, code, self.to_string()).into_response()
    }
}
