//! What every process serves besides its own routes, and how it starts and stops.
//!
//! [`finish`] adds `GET /health`, `GET /ready` and `GET /metrics` to a service's router and wraps
//! it in the common layers; [`serve`] runs it until the shutdown token fires, then lets in-flight
//! requests finish (for at most the grace period) before returning.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ErrorBody};
use crate::metrics::Metrics;
use crate::middleware::{observe, tag_route};

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The dependencies a process needs before it can serve traffic, probed by `GET /ready`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named check; `probe` answers `Err(reason)` when the dependency is unusable.
    pub fn check<F, Fut>(mut self, name: &'static str, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(probe()) as CheckFuture)));
        self
    }

    /// Runs every check concurrently; each answers "ok" or "failing". Why a check failed is
    /// logged, never answered: `/ready` is reachable from outside and the reason can name
    /// hosts, ports and driver internals.
    async fn run(&self) -> (bool, Map<String, Value>) {
        let results = futures_util::future::join_all(self.checks.iter().map(|(name, check)| {
            let check = check.clone();
            async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err("timed out".to_string()),
                };
                (*name, outcome)
            }
        }))
        .await;
        let all_ok = results.iter().all(|(_, r)| r.is_ok());
        let checks = results
            .into_iter()
            .map(|(name, outcome)| {
                let state = match outcome {
                    Ok(()) => "ok",
                    Err(reason) => {
                        tracing::warn!(check = name, %reason, "readiness check failed");
                        "failing"
                    }
                };
                (name.to_string(), Value::from(state))
            })
            .collect();
        (all_ok, checks)
    }
}

#[derive(Clone)]
struct OpsState {
    service: &'static str,
    metrics: Metrics,
    readiness: Readiness,
}

/// Whether the process is up.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Up", body = Object, example = json!({"status": "ok", "service": "gateway"}))))]
async fn health(State(ops): State<OpsState>) -> Json<Value> {
    Json(json!({"status": "ok", "service": ops.service}))
}

/// Whether the process can serve: each of its dependencies answers.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready; `checks` names each dependency as `ok`", body = Object,
            example = json!({"status": "ready", "service": "gateway", "checks": {"orders": "ok"}})),
        (status = 503, description = "`NOT_READY`; `details.checks` says which failed (reasons are logged, not sent)", body = ErrorBody),
    ))]
async fn ready(State(ops): State<OpsState>) -> Response {
    let (ok, checks) = ops.readiness.run().await;
    if ok {
        Json(json!({"status": "ready", "service": ops.service, "checks": checks})).into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NOT_READY",
            format!("{} is not ready", ops.service),
        )
        .with_details(json!({ "checks": checks }))
        .into_response()
    }
}

/// Prometheus / OpenMetrics counters and histograms of the process.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(ops): State<OpsState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ops.metrics.render(),
    )
}

/// The OpenAPI description of the operational routes every process serves.
pub fn operations_openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    #[derive(OpenApi)]
    #[openapi(paths(health, ready, metrics))]
    struct OperationsDoc;
    OperationsDoc::openapi()
}

/// Adds the operational routes to `routes` and wraps everything in the common layers.
pub fn finish(
    routes: Router,
    service: &'static str,
    metrics: Metrics,
    readiness: Readiness,
) -> Router {
    observed(
        with_operations(routes, service, metrics.clone(), readiness),
        metrics,
    )
}

/// `routes` plus `GET /health`, `/ready` and `/metrics`. A process that wraps its whole
/// application in layers of its own (the gateway) adds them to this, then calls [`observed`].
pub fn with_operations(
    routes: Router,
    service: &'static str,
    metrics: Metrics,
    readiness: Readiness,
) -> Router {
    let ops = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(self::metrics))
        .with_state(OpsState {
            service,
            metrics,
            readiness,
        });
    routes
        .merge(ops)
        .route_layer(middleware::from_fn(tag_route))
}

/// The outermost layer: request ids, tracing, metrics and the error body.
pub fn observed(app: Router, metrics: Metrics) -> Router {
    around(middleware::from_fn_with_state(metrics, observe), app)
}

/// `app` inside `layer`, as one router. Unlike `Router::layer`, which wraps every route's
/// service on its own and boxes it again at each layer (a clone and an allocation per layer
/// per request), the layer wraps the router once.
pub fn around<L>(layer: L, app: Router) -> Router
where
    L: tower::Layer<Router>,
    L::Service: tower::Service<
            axum::extract::Request,
            Response = Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
{
    Router::new().fallback_service(layer.layer(app))
}

/// Binds a listener, naming the address when that fails.
pub async fn bind(host: IpAddr, port: u16) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::new(host, port);
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

/// Serves `app` until `shutdown` fires, then waits up to `grace` for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let grace_expired = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = grace_expired => {
            tracing::warn!(?grace, "in-flight requests still running after the grace period; stopping anyway");
            Ok(())
        }
    }
}

/// A token cancelled on SIGINT (Ctrl-C) or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: finishing in-flight requests");
        cancel.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    async fn spawn(
        app: Router,
    ) -> (
        String,
        CancellationToken,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = bind([127, 0, 0, 1].into(), 0).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let token = CancellationToken::new();
        let handle = tokio::spawn(serve(listener, app, token.clone(), Duration::from_secs(5)));
        (url, token, handle)
    }

    fn app(readiness: Readiness) -> Router {
        let routes = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    "done"
                }),
            )
            .route("/echo", post(|body: String| async move { body }))
            .route(
                "/boom",
                get(|| async { ApiError::bad_request("BAD_THING", "that was bad") }),
            );
        finish(routes, "test", Metrics::new("test"), readiness)
    }

    #[tokio::test]
    async fn health_ready_and_metrics_are_served() {
        let (url, token, _) = spawn(app(Readiness::new().check("kv", || async { Ok(()) }))).await;
        let health: Value = reqwest::get(format!("{url}/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health, json!({"status": "ok", "service": "test"}));
        let ready = reqwest::get(format!("{url}/ready")).await.unwrap();
        assert_eq!(ready.status(), 200);
        let metrics = reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(r#"route="/health",status="200""#),
            "{metrics}"
        );
        token.cancel();
    }

    #[tokio::test]
    async fn ready_names_the_failing_dependency() {
        let readiness = Readiness::new()
            .check("kv", || async { Ok(()) })
            .check("bus", || async { Err("connection refused".to_string()) });
        let (url, token, _) = spawn(app(readiness)).await;
        let res = reqwest::get(format!("{url}/ready")).await.unwrap();
        assert_eq!(res.status(), 503);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "NOT_READY");
        assert_eq!(body["details"]["checks"]["bus"], "failing");
        assert!(!body.to_string().contains("connection refused"));
        assert_eq!(body["details"]["checks"]["kv"], "ok");
        token.cancel();
    }

    #[tokio::test]
    async fn every_error_has_the_body_and_request_id() {
        let (url, token, _) = spawn(app(Readiness::new())).await;
        let client = reqwest::Client::new();
        for (method, path, status, code) in [
            ("GET", "/nowhere", 404, "NOT_FOUND"),
            ("DELETE", "/health", 405, "METHOD_NOT_ALLOWED"),
            ("GET", "/boom", 400, "BAD_THING"),
        ] {
            let res = client
                .request(method.parse().unwrap(), format!("{url}{path}"))
                .header("x-request-id", "trace-me-42")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), status, "{method} {path}");
            assert_eq!(res.headers()["x-request-id"], "trace-me-42");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["code"], code, "{body}");
            assert_eq!(body["requestId"], "trace-me-42");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
        token.cancel();
    }

    #[tokio::test]
    async fn a_request_id_is_generated_when_missing() {
        let (url, token, _) = spawn(app(Readiness::new())).await;
        let res = reqwest::get(format!("{url}/health")).await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        token.cancel();
    }

    #[tokio::test]
    async fn shutdown_lets_in_flight_requests_finish() {
        let (url, token, handle) = spawn(app(Readiness::new())).await;
        let in_flight = tokio::spawn(async move { reqwest::get(format!("{url}/slow")).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
        let res = in_flight
            .await
            .unwrap()
            .expect("the in-flight request is answered");
        assert_eq!(res.text().await.unwrap(), "done");
        let served = tokio::time::timeout(Duration::from_secs(3), handle).await;
        assert!(matches!(served, Ok(Ok(Ok(())))), "the server stops cleanly");
    }
}
