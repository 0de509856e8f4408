//! The gateway: one origin in front of auth, events, orders and ml (a backend-for-frontend).
//!
//! It forwards `/api/*` to the services (see [`upstream::route`]) and answers the upstreams'
//! health on `/{service}/health`. For browsers it bridges the `access_token` cookie to a bearer
//! header and checks the origin of cookie-authenticated writes ([`browser`]), applies CORS and
//! security headers ([`security`]), and rate-limits every route class per user or client
//! ([`limits`]).
//! Only canonical paths get that far ([`paths`]).

pub mod breaker;
pub mod browser;
pub mod clients;
pub mod docs;
pub mod error;
pub mod limits;
pub mod paths;
pub mod proxy;
pub mod revocation;
pub mod security;
pub mod upstream;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use holdfast_common::auth::TokenKeys;
use holdfast_common::config::Settings;
use holdfast_common::error::{ApiError, ErrorBody};
use holdfast_common::infra::Infra;
use holdfast_common::metrics::Metrics;
use holdfast_common::server::{self, Readiness};
use prometheus_client::metrics::counter::Counter;
use serde_json::json;

use crate::breaker::Breakers;
use crate::browser::BrowserPolicy;
use crate::upstream::{LocalServices, Upstream, Upstreams};

/// The name of the gateway's metrics listener (`GATEWAY_METRICS_PORT`).
pub const METRICS: &str = "gateway-metrics";

/// The process's name in logs, metrics and health answers.
pub const SERVICE: &str = "gateway";

/// What every gateway handler shares.
#[derive(Clone)]
pub struct GatewayState {
    pub upstreams: Arc<Upstreams>,
    pub client: proxy::HttpClient,
    pub browser: BrowserPolicy,
    pub breakers: Arc<Breakers>,
    /// How long an upstream may take to start answering.
    pub timeout: std::time::Duration,
}

impl GatewayState {
    /// The gateway's state; its circuit breakers report into `registry`.
    pub fn new(
        settings: &Settings,
        local: &LocalServices,
        kv: Arc<dyn holdfast_common::kv::TtlStore>,
        registry: &mut prometheus_client::registry::Registry,
    ) -> anyhow::Result<Self> {
        let upstreams = Upstreams::new(&settings.service_urls, local)?;
        for upstream in upstreams.all() {
            tracing::info!(upstream = upstream.name, via = %upstream.address, "gateway upstream");
        }
        let names: Vec<&'static str> = upstreams.all().iter().map(|u| u.name).collect();
        Ok(Self {
            timeout: settings.upstream_timeout,
            breakers: Arc::new(Breakers::new(&names, &settings.gateway, registry)),
            upstreams: Arc::new(upstreams),
            client: proxy::http_client(),
            browser: BrowserPolicy {
                keys: Arc::new(TokenKeys::new(&settings.auth.jwt_secret)),
                revocations: Arc::new(revocation::Revocations::new(kv)),
                allowed_origins: Arc::new(settings.gateway.cors_origins.clone()),
                default_scheme: if settings.auth.cookie_secure {
                    "https"
                } else {
                    "http"
                },
                trusted_proxies: clients::TrustedProxies::new(&settings.gateway.trusted_proxies),
            },
        })
    }

    /// Whether `upstream` answers its `/health` with a success.
    async fn upstream_healthy(&self, upstream: &Upstream) -> Result<(), String> {
        let request = Request::new(axum::body::Body::empty());
        match proxy::forward(&self.client, upstream, "/health", request, self.timeout).await {
            Ok(res) if res.status().is_success() => Ok(()),
            Ok(res) => Err(format!("answered {}", res.status())),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// `GET /{service}/health`: the upstream's own health answer, or 503 `{status: "down"}`.
#[utoipa::path(get, path = "/{service}/health", tag = "operations",
    params(("service" = inline(UpstreamName), Path)),
    responses(
        (status = 200, description = "The service's own health answer", body = Object,
            example = json!({"status": "ok", "service": "orders"})),
        (status = 404, description = "`NOT_FOUND`: no such service", body = ErrorBody),
        (status = 503, description = "`{status: \"down\", service}`", body = Object,
            example = json!({"status": "down", "service": "orders"})),
    ))]
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
    match proxy::forward(&state.client, upstream, path, request, state.timeout).await {
        Ok(response) if response.status().is_success() => response,
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "down", "service": upstream.name})),
        )
            .into_response(),
    }
}

/// The services whose health the gateway reports.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum UpstreamName {
    Auth,
    Events,
    Orders,
    Ml,
    Notifications,
}

/// Everything under `/api`: forwarded to the service that owns the path.
async fn forward_api(State(state): State<GatewayState>, request: Request) -> Response {
    let Some((upstream, path)) = upstream::route(&state.upstreams, request.uri().path()) else {
        return ApiError::from_status(StatusCode::NOT_FOUND).into_response();
    };
    let call = proxy::forward(&state.client, upstream, &path, request, state.timeout);
    match state.breakers.call(upstream.name, call).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The gateway's own routes with the cookie bridge and, unless `limiter` is `None`, the rate
/// limits; CORS and security headers wrap it in [`build`].
pub fn router(state: GatewayState, limiter: Option<Arc<limits::Limiter>>) -> Router {
    let mut router = Router::new();
    for upstream in state.upstreams.all() {
        router = router.route(&format!("/{}/health", upstream.name), get(upstream_health));
    }
    router = router
        .route("/api/openapi.json", get(docs::openapi_json))
        .route("/docs", get(docs::docs_root))
        .route("/docs/", get(docs::docs_index))
        .route("/docs/{*file}", get(docs::docs_file))
        .route("/api/{*path}", any(forward_api));
    if let Some(limiter) = limiter {
        // Inside the cookie bridge, so a cookie's user is known when the limit is keyed.
        router = router.layer(from_fn_with_state(limiter, limits::enforce));
    }
    router
        .layer(from_fn_with_state(
            state.browser.clone(),
            browser::cookie_bridge,
        ))
        .with_state(state)
}

/// The OpenAPI description of the gateway's own routes (the services' are merged in by
/// `holdfast::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    #[derive(OpenApi)]
    #[openapi(paths(upstream_health, docs::openapi_json, docs::docs_root))]
    struct GatewayDoc;
    GatewayDoc::openapi()
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

/// The gateway's routers: the public application, and its metrics alone for a port of their
/// own (`GATEWAY_METRICS_PORT`), in which case the public one does not serve `/metrics`.
pub struct GatewayRouters {
    pub public: Router,
    pub metrics: Router,
}

/// The gateway's complete application, reaching every service over HTTP.
pub async fn build(settings: Arc<Settings>, infra: Infra) -> anyhow::Result<GatewayRouters> {
    build_with(settings, infra, LocalServices::new()).await
}

/// The gateway's complete application; the services in `local` are called in process.
pub async fn build_with(
    settings: Arc<Settings>,
    infra: Infra,
    local: LocalServices,
) -> anyhow::Result<GatewayRouters> {
    let rate_limited = Counter::default();
    let (metrics, state) = Metrics::build(SERVICE, |registry| {
        registry.register(
            "rate_limit_rejections",
            "Requests refused by a rate limit",
            rate_limited.clone(),
        );
        GatewayState::new(&settings, &local, infra.kv.clone(), registry)
    });
    let state = state?;
    let readiness = readiness(&state);
    let limiter = if settings.gateway.rate_limit_disabled {
        None
    } else {
        Some(Arc::new(limits::Limiter::new(
            settings.gateway.rate_limits,
            state.browser.keys.clone(),
            state.browser.trusted_proxies.clone(),
            infra.redis.clone(),
            rate_limited,
        )?))
    };
    let routes = router(state, limiter);
    // Non-canonical paths are refused before any route, limit or upstream sees them; CORS and
    // the security headers cover every answer, the operational routes' and refusals included.
    let edge = tower::ServiceBuilder::new()
        .layer(from_fn_with_state(
            settings.auth.cookie_secure,
            security::security_headers,
        ))
        .layer(security::cors(&settings.gateway.cors_origins))
        .layer(axum::middleware::from_fn(paths::require_canonical));
    // With a metrics port of their own, the public port does not serve them.
    let public_metrics = settings.gateway.metrics_port.is_none();
    let app = server::with_operations(
        routes,
        SERVICE,
        metrics.clone(),
        readiness.clone(),
        public_metrics,
    );
    let app = server::around(edge, app);
    let metrics_only =
        server::with_operations(Router::new(), SERVICE, metrics.clone(), readiness, true);
    Ok(GatewayRouters {
        public: server::observed(app, metrics.clone()),
        metrics: server::observed(metrics_only, metrics),
    })
}
