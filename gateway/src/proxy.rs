//! Forwarding a request to an upstream service and its answer back, unchanged except for
//! hop-by-hop headers (RFC 9110 §7.6.1), which belong to one connection only.
//!
//! Bodies stream both ways: the request body goes to the upstream as it arrives (cut at
//! [`MAX_BODY_BYTES`], or [`MAX_SCAN_BATCH_BYTES`] for a batch of offline scans), and the answer's body goes to the client as it comes, so a long-lived
//! answer (a Server-Sent Events stream) passes through unbuffered and is not cut. The upstream
//! timeout bounds the wait for the answer's head only.

use std::error::Error as _;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, Version, header, uri};
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::GatewayError;
use crate::upstream::{Address, Upstream};

/// The largest request body the gateway accepts (and so forwards).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The largest offline batch of scans (`POST /api/checkin/events/:id/scans`): 10,000 scans
/// of a ~160-character pass each.
pub const MAX_SCAN_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// The largest body the gateway accepts for the service path `path`.
pub fn max_body_bytes(path: &str) -> usize {
    if path.starts_with("/checkin/events/") && path.ends_with("/scans") {
        MAX_SCAN_BATCH_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

/// The pooled HTTP/1.1 client the gateway reaches upstreams with.
pub type HttpClient = Client<HttpConnector, Body>;

/// A client keeping up to 256 idle keep-alive connections per upstream. It has no overall
/// timeout (that would cut streamed answers): [`forward`] bounds the wait for each head.
pub fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// An over-limit body up to this size is read and thrown away before the 413 is sent, for at
/// most [`DISCARD_TIMEOUT`]. A server that closes the connection while the client is still
/// writing makes the client's kernel see a reset, and the client a broken pipe instead of the
/// answer (why nginx "lingers" on close); a larger or slower body is not worth the wait.
const DISCARD_MAX_BYTES: u64 = 16 * 1024 * 1024;
const DISCARD_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads `body` to its end (within [`DISCARD_TIMEOUT`]) without keeping any of it.
async fn discard(body: Body) {
    let mut body = body;
    let read_all = async { while let Some(Ok(_)) = body.frame().await {} };
    let _ = tokio::time::timeout(DISCARD_TIMEOUT, read_all).await;
}

/// Drops the headers that describe one connection rather than the message, in place.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

/// Sends `request` to `upstream` at `path` (plus the original query) and relays the answer,
/// waiting at most `timeout` for its head.
pub async fn forward(
    client: &HttpClient,
    upstream: &Upstream,
    path: &str,
    request: Request,
    timeout: Duration,
) -> Result<Response, GatewayError> {
    let (mut parts, body) = request.into_parts();
    let declared_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = max_body_bytes(path);
    if let Some(length) = declared_length.filter(|&length| length > limit as u64) {
        if length <= DISCARD_MAX_BYTES {
            discard(body).await;
        }
        return Err(GatewayError::BodyTooLarge(limit));
    }
    let body = Body::new(Limited::new(body, limit));
    strip_hop_by_hop(&mut parts.headers);
    // The upstream is named by the URI; the client's Host is not its business.
    parts.headers.remove(header::HOST);
    // Gateway-side extensions (matched route, connection info) do not cross to the service.
    parts.extensions.clear();
    parts.version = Version::HTTP_11;

    let answer = match &upstream.address {
        Address::Local(router) => {
            parts.uri = path_and_query(upstream, "", path, parts.uri.query())?.into();
            let call = tower::ServiceExt::oneshot(router.clone(), Request::from_parts(parts, body));
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(infallible)) => match infallible {},
                Err(_) => return Err(timed_out(upstream)),
            }
        }
        Address::Http(replicas) => {
            let server = replicas.pick();
            let path_and_query =
                path_and_query(upstream, &server.base_path, path, parts.uri.query())?;
            parts.uri = uri::Uri::from_parts({
                let mut uri = uri::Parts::default();
                uri.scheme = Some(server.scheme.clone());
                uri.authority = Some(server.authority.clone());
                uri.path_and_query = Some(path_and_query);
                uri
            })
            .map_err(|_| GatewayError::UpstreamUnavailable(upstream.name))?;
            let sent = client.request(Request::from_parts(parts, body));
            match tokio::time::timeout(timeout, sent).await {
                Ok(Ok(answer)) => answer.map(Body::new),
                Ok(Err(error)) => {
                    if connection_lost(&error) {
                        server.mark_down();
                        if replicas.has_several() {
                            tracing::warn!(upstream = upstream.name, %server, %error, "replica went away");
                            return Err(GatewayError::ReplicaUnavailable(upstream.name));
                        }
                    }
                    return Err(upstream_error(upstream, &error, limit));
                }
                Err(_) => return Err(timed_out(upstream)),
            }
        }
    };
    let (mut parts, body) = answer.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, body))
}

/// `{base_path}{path}?{query}` as the request target the upstream is sent.
fn path_and_query(
    upstream: &Upstream,
    base_path: &str,
    path: &str,
    query: Option<&str>,
) -> Result<uri::PathAndQuery, GatewayError> {
    let target = match query {
        Some(query) => format!("{base_path}{path}?{query}"),
        None => format!("{base_path}{path}"),
    };
    uri::PathAndQuery::from_maybe_shared(target)
        .map_err(|_| GatewayError::UpstreamUnavailable(upstream.name))
}

/// Whether the call failed because the server is gone: it refused the connection, or the
/// connection closed under the call (a process stopped or killed).
fn connection_lost(error: &hyper_util::client::legacy::Error) -> bool {
    if error.is_connect() {
        return true;
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>() {
            return hyper_error.is_incomplete_message()
                || hyper_error.is_closed()
                || hyper_error.is_canceled();
        }
        source = cause.source();
    }
    false
}

fn timed_out(upstream: &Upstream) -> GatewayError {
    tracing::warn!(upstream = upstream.name, "upstream timed out");
    GatewayError::UpstreamTimeout(upstream.name)
}

/// A failed call: the client's body passing the limit is the client's fault, anything else
/// is the upstream's.
fn upstream_error(
    upstream: &Upstream,
    error: &hyper_util::client::legacy::Error,
    limit: usize,
) -> GatewayError {
    let mut source = error.source();
    while let Some(cause) = source {
        if cause.is::<LengthLimitError>() {
            return GatewayError::BodyTooLarge(limit);
        }
        source = cause.source();
    }
    tracing::warn!(upstream = upstream.name, %error, "upstream call failed");
    GatewayError::UpstreamUnavailable(upstream.name)
}
