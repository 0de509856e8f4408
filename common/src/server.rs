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
        with_operations(routes, service, metrics.clone(), readiness, true),
        metrics,
    )
}

/// `routes` plus `GET /health`, `/ready` and, with `serve_metrics`, `/metrics` (the gateway
/// may serve its metrics on a port of their own instead). A process that wraps its whole
/// application in layers of its own (the gateway) adds them to this, then calls [`observed`].
pub fn with_operations(
    routes: Router,
    service: &'static str,
    metrics: Metrics,
    readiness: Readiness,
    serve_metrics: bool,
) -> Router {
    let ops = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready));
    let ops = if serve_metrics {
        ops.route("/metrics", get(self::metrics))
    } else {
        ops
    };
    let ops = ops.with_state(OpsState {
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

/// How long a client may take to send a request's head, and how long a kept-alive connection
/// may wait idle for its next request (hyper starts the same timer when it waits for a head).
/// A client that sends nothing, or a header byte now and then, is closed after this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections one listener serves at once, and (at the gateway) one client address.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections of the listener; a connection beyond is closed at once.
    pub max_open: usize,
    /// Open connections of one client address; `None`: no such cap (services, whose clients
    /// are gateways).
    pub max_per_client: Option<usize>,
    /// Addresses the per-client cap does not apply to (trusted proxies carry many clients).
    pub exempt: Arc<[ipnet::IpNet]>,
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_open: 10_000,
            max_per_client: None,
            exempt: Arc::from([]),
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// Open connections per client address, and a guard that gives one back.
#[derive(Default)]
struct PerClient(std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>);

struct ClientSlot {
    clients: Arc<PerClient>,
    address: IpAddr,
}

impl PerClient {
    fn take(self: &Arc<Self>, address: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = crate::sync::lock(&self.0);
        let count = open.entry(address).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            clients: self.clone(),
            address,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = crate::sync::lock(&self.clients.0);
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Serves `app` until `shutdown` fires, then waits up to `grace` for in-flight requests. Each
/// connection gets [`HEADER_READ_TIMEOUT`]; connections past `limits` are closed as they come.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, grace, ConnectionLimits::default()).await
}

/// [`serve`] with the given connection limits.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_open));
    let per_client = Arc::new(PerClient::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors or similar: back off instead of spinning; the
                    // connections already open keep being served.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_open, "connection refused: too many open");
            continue;
        };
        let client = peer.ip().to_canonical();
        let slot = match limits.max_per_client {
            Some(max) if !limits.exempt.iter().any(|net| net.contains(&client)) => {
                match per_client.take(client, max) {
                    Some(slot) => Some(slot),
                    None => {
                        tracing::warn!(%peer, max, "connection refused: too many open from this client");
                        continue;
                    }
                }
            }
            _ => None,
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut request: axum::extract::Request<_>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            });
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _held = (permit, slot);
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "in-flight requests still running after the grace period; stopping anyway");
        }
    }
    Ok(())
}

/// Raises this process's open-file limit to the most it may have, so that many connections do
/// not run it out of descriptors (the default soft limit is often 1,024). Logged, never fatal.
pub fn raise_file_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
        let raised = unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && {
                let before = limit.rlim_cur;
                limit.rlim_cur = limit.rlim_max;
                before == limit.rlim_max || libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
            }
        };
        if raised {
            tracing::debug!(open_files = limit.rlim_cur, "open-file limit");
        } else {
            tracing::warn!("cannot raise the open-file limit");
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A server of `GET /` with `limits` (a 1 s header timeout); its address.
    async fn limited(limits: ConnectionLimits) -> (SocketAddr, CancellationToken) {
        let listener = bind([127, 0, 0, 1].into(), 0).await.unwrap();
        let address = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let app = Router::new().route("/", get(|| async { "ok" }));
        tokio::spawn(serve_with(
            listener,
            app,
            token.clone(),
            Duration::from_secs(1),
            limits,
        ));
        (address, token)
    }

    fn one_second() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        }
    }

    /// Whether the server closed `stream` (reads end) within `within`.
    async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
        let mut buffer = [0_u8; 1024];
        loop {
            match tokio::time::timeout(within, stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    async fn get_ok(stream: &mut TcpStream) -> bool {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0_u8; 1024];
        let read = stream.read(&mut buffer).await.unwrap_or(0);
        buffer[..read].starts_with(b"HTTP/1.1 200")
    }

    /// A socket that sends nothing, one that sends a header byte now and then, and a
    /// kept-alive one left idle are all closed after the header timeout.
    #[tokio::test]
    async fn idle_and_slow_clients_are_closed_after_the_header_timeout() {
        let (address, _token) = limited(one_second()).await;
        let mut idle = TcpStream::connect(address).await.unwrap();
        assert!(
            closed_within(&mut idle, Duration::from_secs(3)).await,
            "idle"
        );

        let mut slow = TcpStream::connect(address).await.unwrap();
        let trickle = async {
            for byte in b"GET / HTTP/1.1\r\nHost: t" {
                if slow.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
        assert!(
            closed_within(&mut slow, Duration::from_secs(1)).await,
            "slow"
        );

        let mut kept = TcpStream::connect(address).await.unwrap();
        assert!(get_ok(&mut kept).await);
        assert!(
            closed_within(&mut kept, Duration::from_secs(3)).await,
            "kept alive, idle"
        );
    }

    /// Past the listener's cap, and past one client's cap at the edge, a new connection is
    /// closed at once; the open ones keep being served, and a slot frees when one closes.
    #[tokio::test]
    async fn connections_past_the_caps_are_closed_at_once() {
        let (address, _token) = limited(ConnectionLimits {
            max_open: 2,
            ..one_second()
        })
        .await;
        let mut first = TcpStream::connect(address).await.unwrap();
        let mut second = TcpStream::connect(address).await.unwrap();
        assert!(get_ok(&mut first).await && get_ok(&mut second).await);
        let mut third = TcpStream::connect(address).await.unwrap();
        assert!(closed_within(&mut third, Duration::from_millis(500)).await);
        drop(first);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut fourth = TcpStream::connect(address).await.unwrap();
        assert!(get_ok(&mut fourth).await);

        let (edge, _token) = limited(ConnectionLimits {
            max_per_client: Some(1),
            ..one_second()
        })
        .await;
        let mut own = TcpStream::connect(edge).await.unwrap();
        assert!(get_ok(&mut own).await);
        let mut another = TcpStream::connect(edge).await.unwrap();
        assert!(closed_within(&mut another, Duration::from_millis(500)).await);
        // A trusted proxy's connections are not counted per client.
        let (proxied, _token) = limited(ConnectionLimits {
            max_per_client: Some(1),
            exempt: Arc::from(["127.0.0.1/32".parse::<ipnet::IpNet>().unwrap()]),
            ..one_second()
        })
        .await;
        let mut a = TcpStream::connect(proxied).await.unwrap();
        let mut b = TcpStream::connect(proxied).await.unwrap();
        assert!(get_ok(&mut a).await && get_ok(&mut b).await);
    }

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
