//! The gateway: one origin in front of auth, events, orders and ml (a backend-for-frontend).
//!
//! It forwards `/api/*` to the services (see [`upstream::route`]) and answers the upstreams'
//! health on `/{service}/health`.

pub mod error;
pub mod proxy;
pub mod upstream;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use holdfast_common::config::Settings;
use holdfast_common::error::ApiError;
use holdfast_common::infra::Infra;
use holdfast_common::metrics::Metrics;
use holdfast_common::server::{self, Readiness};
use serde_json::json;

use crate::upstream::{Upstream, Upstreams};

/// The process's name in logs, metrics and health answers.
pub const SERVICE: &str = "gateway";

/// What every gateway handler shares.
#[derive(Clone)]
pub struct GatewayState {
    pub upstreams: Arc<Upstreams>,
    pub client: reqwest::Client,
}

impl GatewayState {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(settings.upstream_timeout)
            // Redirects are the client's business: pass them through untouched.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(Self {
            upstreams: Arc::new(Upstreams::from_urls(&settings.service_urls)),
            client,
        })
    }

    /// Whether `upstream` answers its `/health` with a success.
    async fn upstream_healthy(&self, upstream: &Upstream) -> Result<(), String> {
        let url = format!("{}/health", upstream.base_url);
        match self.client.get(&url).send().await {
            Ok(res) if res.status().is_success() => Ok(()),
            Ok(res) => Err(format!("answered {}", res.status())),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// `GET /{service}/health`: the upstream's own health answer, or 503 `{status: "down"}`.
async fn upstream_health(State(state): State<GatewayState>, request: Request) -> Response {
    let name = request
        .uri()
        .path()
        .trim_start_matches('/')
        .trim_end_matches("/health");
    let Some(upstream) = state.upstreams.by_name(name) else {
        return ApiError::from_status(StatusCode::NOT_FOUND).into_response();
    };
    let path = "/health";
    match proxy::forward(&state.client, upstream, path, request).await {
        Ok(response) if response.status().is_success() => response,
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "down", "service": upstream.name})),
        )
            .into_response(),
    }
}

/// Everything under `/api`: forwarded to the service that owns the path.
async fn forward_api(State(state): State<GatewayState>, request: Request) -> Response {
    let Some((upstream, path)) = upstream::route(&state.upstreams, request.uri().path()) else {
        return ApiError::from_status(StatusCode::NOT_FOUND).into_response();
    };
    match proxy::forward(&state.client, upstream, &path, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The gateway's own routes.
pub fn router(state: GatewayState) -> Router {
    let mut router = Router::new();
    for name in ["auth", "events", "orders", "ml"] {
        router = router.route(&format!("/{name}/health"), get(upstream_health));
    }
    router
        .route("/api/{*path}", any(forward_api))
        .with_state(state)
}

/// Readiness: every upstream answers its health check.
fn readiness(state: &GatewayState) -> Readiness {
    let mut readiness = Readiness::new();
    for upstream in state.upstreams.all() {
        let (state, upstream) = (state.clone(), upstream.clone());
        readiness = readiness.check(upstream.name, move || {
            let (state, upstream) = (state.clone(), upstream.clone());
            async move { state.upstream_healthy(&upstream).await }
        });
    }
    readiness
}

/// The gateway's complete application.
pub async fn build(settings: Arc<Settings>, _infra: Infra) -> anyhow::Result<Router> {
    let state = GatewayState::new(&settings)?;
    let readiness = readiness(&state);
    Ok(server::finish(
        router(state),
        SERVICE,
        Metrics::new(SERVICE),
        readiness,
    ))
}
