//! Per-client-IP rate limits on the credential endpoints (login, signup, token), against
//! password guessing and account-creation floods.
//!
//! A client may burst `AUTH_RATE_LIMIT_BURST` requests, then one more per
//! `AUTH_RATE_LIMIT_REFILL_MS`. Clients are told apart by their peer address: behind a proxy
//! that address is the proxy's, and headers like `X-Forwarded-For` are not trusted because any
//! client can set them. Rejections answer 429 with `Retry-After` and are counted in metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use holdfast_common::config::GatewaySettings;
use holdfast_common::error::ApiError;
use prometheus_client::metrics::counter::Counter;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::{GovernorError, GovernorLayer};

/// Every route of `routes` behind one shared per-IP limit, unless limits are disabled.
pub fn limit_credentials<S>(
    routes: Router<S>,
    settings: &GatewaySettings,
    rejections: Counter,
) -> anyhow::Result<Router<S>>
where
    S: Clone + Send + Sync + 'static,
{
    if settings.rate_limit_disabled {
        return Ok(routes);
    }
    let refill_ms = u64::try_from(settings.auth_rate_limit_refill.as_millis()).unwrap_or(u64::MAX);
    let config = GovernorConfigBuilder::default()
        .per_millisecond(refill_ms)
        .burst_size(settings.auth_rate_limit_burst)
        .finish()
        .ok_or_else(|| {
            anyhow::anyhow!("AUTH_RATE_LIMIT_BURST / AUTH_RATE_LIMIT_REFILL_MS: invalid rate limit")
        })?;
    let config = Arc::new(config);

    // Forget clients that have been quiet long enough to be back at a full burst.
    let limiter = Arc::downgrade(config.limiter());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let Some(limiter) = limiter.upgrade() else {
                return;
            };
            limiter.retain_recent();
        }
    });

    let layer = GovernorLayer::new(config).error_handler(move |error| {
        rejections.inc();
        too_many_requests(error)
    });
    Ok(routes.layer(layer))
}

fn too_many_requests(error: GovernorError) -> axum::response::Response {
    let wait_seconds = match error {
        GovernorError::TooManyRequests { wait_time, .. } => wait_time.max(1),
        _ => 1,
    };
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        format!("too many attempts; retry in {wait_seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_seconds));
    response
}
