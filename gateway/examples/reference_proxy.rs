//! The floor `bench/proxy.sh` compares the gateway with: the same axum server and pooled
//! hyper-util client, forwarding `/api/*` to `UPSTREAM` and nothing else — no request ids,
//! logs, metrics, CORS, cookie bridge, limits or breaker. What the gateway costs above this is
//! its own; what this costs above nginx is the HTTP stack's.
//!
//! ```text
//! cargo run --release -p holdfast-gateway --example reference_proxy
//! ```
//! `GATEWAY_PORT` (default 18083) and `UPSTREAM` (default `http://127.0.0.1:18081`).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Clone)]
struct Proxy {
    client: Client<HttpConnector, Body>,
    upstream: String,
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().trim_start_matches("/api");
    let Ok(uri) = format!("{}{path}", proxy.upstream).parse::<Uri>() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    parts.uri = uri;
    parts.headers.remove(header::HOST);
    match proxy.client.request(Request::from_parts(parts, body)).await {
        Ok(answer) => answer.map(Body::new),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port = std::env::var("GATEWAY_PORT").unwrap_or_else(|_| "18083".into());
    let upstream = std::env::var("UPSTREAM").unwrap_or_else(|_| "http://127.0.0.1:18081".into());
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);
    let app = axum::Router::new()
        .route("/api/{*path}", axum::routing::any(forward))
        .with_state(Proxy { client, upstream });
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
