//! Forwarding a request to an upstream service and its answer back, unchanged except for
//! hop-by-hop headers (RFC 9110 §7.6.1), which belong to one connection only.
//!
//! The upstream timeout bounds the wait for the answer's head; the body is then streamed to the
//! client as it comes, so a long-lived answer (a Server-Sent Events stream) passes through
//! unbuffered and is not cut.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, header};
use axum::response::Response;

use crate::error::GatewayError;
use crate::upstream::Upstream;

/// The largest request body the gateway accepts (and so forwards).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn is_forwardable(name: &HeaderName) -> bool {
    !HOP_BY_HOP.contains(name)
        && name != header::HOST
        && name != header::CONTENT_LENGTH
        && name.as_str() != "keep-alive"
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if is_forwardable(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// Sends `request` to `upstream` at `path` (plus the original query) and relays the answer,
/// waiting at most `timeout` for its head.
pub async fn forward(
    client: &reqwest::Client,
    upstream: &Upstream,
    path: &str,
    request: Request,
    timeout: std::time::Duration,
) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| GatewayError::BodyTooLarge(MAX_BODY_BYTES))?;
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    if let Some(router) = &upstream.local {
        return call_local(
            router,
            upstream,
            parts.method,
            &format!("{path}{query}"),
            headers,
            body,
            timeout,
        )
        .await;
    }
    let url = format!("{}{path}{query}", upstream.base_url);

    let sent = client
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send();
    let answer = match tokio::time::timeout(timeout, sent).await {
        Ok(answer) => answer.map_err(|e| upstream_error(upstream, &e))?,
        Err(_) => {
            tracing::warn!(upstream = upstream.name, "upstream timed out");
            return Err(GatewayError::UpstreamTimeout(upstream.name));
        }
    };

    let status = answer.status();
    let mut response_headers = HeaderMap::new();
    copy_headers(answer.headers(), &mut response_headers);
    let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    Ok(response)
}

/// The in-process call: the service's router answers the same request it would get over
/// HTTP (path, query, forwardable headers, body), within the same timeout.
async fn call_local(
    router: &axum::Router,
    upstream: &Upstream,
    method: axum::http::Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: axum::body::Bytes,
    timeout: std::time::Duration,
) -> Result<Response, GatewayError> {
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = method;
    *request.uri_mut() = path_and_query
        .parse()
        .map_err(|_| GatewayError::UpstreamUnavailable(upstream.name))?;
    *request.headers_mut() = headers;
    let call = tower::ServiceExt::oneshot(router.clone(), request);
    let answer = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(infallible)) => match infallible {},
        Err(_) => {
            tracing::warn!(upstream = upstream.name, "upstream timed out");
            return Err(GatewayError::UpstreamTimeout(upstream.name));
        }
    };
    let (mut parts, body) = answer.into_parts();
    let mut response_headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut response_headers);
    parts.headers = response_headers;
    Ok(Response::from_parts(parts, body))
}

fn upstream_error(upstream: &Upstream, error: &reqwest::Error) -> GatewayError {
    tracing::warn!(upstream = upstream.name, %error, "upstream call failed");
    if error.is_timeout() {
        GatewayError::UpstreamTimeout(upstream.name)
    } else {
        GatewayError::UpstreamUnavailable(upstream.name)
    }
}
