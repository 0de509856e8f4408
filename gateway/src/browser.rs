//! What the gateway does for browsers: the cookie bridge and the CSRF origin check.
//!
//! - Cookie bridge: a request without a valid bearer token whose `access_token` cookie holds a
//!   valid token is forwarded with `Authorization: Bearer <token>`. An invalid cookie is ignored
//!   (the upstream then answers 401 as for any anonymous call).
//! - CSRF (the HTTP contract, after the OWASP cheat sheet's Fetch Metadata + Origin check): an unsafe
//!   method that carries our auth cookies and no valid bearer token must come from our own origin or
//!   one in `CORS_ORIGINS`, judged by `Origin`, else `Referer`; with neither header it is refused
//!   only when `Sec-Fetch-Site: cross-site`. Our own origin is the `Host` the request was sent to,
//!   or the `X-Forwarded-Host`/`-Proto` of a proxy in `TRUSTED_PROXIES` (see [`crate::clients`]);
//!   anyone else's forwarding headers are ignored. Requests with a valid bearer token are not
//!   subject to the check: a browser never attaches one by itself. Any other `Authorization`
//!   (`Basic`, which a browser may attach on its own, or a bearer token that does not verify)
//!   does not exempt a request.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use holdfast_common::auth::{Claims, TokenKeys, bearer_token};
use holdfast_common::error::ApiError;

use crate::clients::TrustedProxies;

const AUTH_COOKIES: [&str; 3] = ["access_token", "refresh_token", "session_id"];

/// What the browser layer needs to decide.
#[derive(Clone)]
pub struct BrowserPolicy {
    pub keys: Arc<TokenKeys>,
    /// Sessions revoked and roles changed since a token was issued.
    pub revocations: Arc<crate::revocation::Revocations>,
    /// `CORS_ORIGINS`, normalised without a trailing slash.
    pub allowed_origins: Arc<Vec<String>>,
    /// The scheme the gateway is reached by when no proxy says otherwise.
    pub default_scheme: &'static str,
    /// Whose `X-Forwarded-Host`/`-Proto` tell our own origin.
    pub trusted_proxies: TrustedProxies,
}

/// The user of an access token the gateway has already verified (the bearer's, or the cookie's
/// the bridge turned into one), so that the layers inside it (the rate limits) need not verify
/// it again.
#[derive(Debug, Clone)]
pub struct BridgedUser(pub String);

fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// `scheme://host[:port]` of a URL, lower-cased; `None` for anything else (including `null`).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if scheme.is_empty() || authority.is_empty() {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl BrowserPolicy {
    /// The origin this request was addressed to, as the browser saw it; `forwarded` says
    /// whether it came through a trusted proxy, whose forwarding headers then tell.
    fn own_origin(&self, headers: &HeaderMap, forwarded: bool) -> Option<String> {
        let forwarded_header = |name| forwarded.then(|| header_str(headers, name)).flatten();
        let host = forwarded_header("x-forwarded-host").or_else(|| header_str(headers, "host"))?;
        let scheme = forwarded_header("x-forwarded-proto").unwrap_or(self.default_scheme);
        origin_of(&format!("{scheme}://{host}"))
    }

    fn is_allowed(&self, origin: &str, headers: &HeaderMap, forwarded: bool) -> bool {
        self.own_origin(headers, forwarded).as_deref() == Some(origin)
            || self
                .allowed_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Whether the verified token with `claims` was revoked (its session, or its user's role
    /// since it was issued). Logging out again with such a token is fine: logout is idempotent.
    async fn has_ended(&self, path: &str, claims: &Claims) -> bool {
        path != "/api/auth/logout" && !self.revocations.admits(claims).await
    }

    /// Whether a cookie-authenticated unsafe request may pass.
    fn passes_csrf_check(&self, headers: &HeaderMap, forwarded: bool) -> bool {
        let allowed = |url| origin_of(url).is_some_and(|o| self.is_allowed(&o, headers, forwarded));
        if let Some(origin) = header_str(headers, "origin") {
            return allowed(origin);
        }
        if let Some(referer) = header_str(headers, "referer") {
            return allowed(referer);
        }
        header_str(headers, "sec-fetch-site") != Some("cross-site")
    }
}

/// The CSRF check, then the cookie bridge (see the module docs).
pub async fn cookie_bridge(
    State(policy): State<BrowserPolicy>,
    mut request: Request,
    next: Next,
) -> Response {
    let forwarded = policy.trusted_proxies.forwarded_by_trusted(&request);
    let headers = request.headers();
    let bearer_user = bearer_token(headers).and_then(|token| policy.keys.verify(token).ok());
    if let Some(claims) = bearer_user {
        // Logging out again with a revoked session's token is fine (logout is idempotent).
        if policy.has_ended(request.uri().path(), &claims).await {
            return session_ended();
        }
        request.extensions_mut().insert(BridgedUser(claims.sub));
    } else {
        let jar = CookieJar::from_headers(headers);
        let cookie_authenticated = AUTH_COOKIES.iter().any(|name| jar.get(name).is_some());
        if cookie_authenticated
            && is_unsafe(request.method())
            && !policy.passes_csrf_check(headers, forwarded)
        {
            tracing::warn!(method = %request.method(), path = %request.uri().path(), "cross-site request refused");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "CSRF_ORIGIN",
                "cross-site request refused: its origin is not allowed",
            )
            .into_response();
        }
        let bridged = jar.get("access_token").and_then(|cookie| {
            let token = cookie.value();
            let claims = policy.keys.verify(token).ok()?;
            let bearer = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
            Some((bearer, claims))
        });
        if let Some((bearer, claims)) = bridged {
            if policy.has_ended(request.uri().path(), &claims).await {
                return session_ended();
            }
            let user = claims.sub;
            request.headers_mut().insert(header::AUTHORIZATION, bearer);
            request.extensions_mut().insert(BridgedUser(user));
        }
    }
    next.run(request).await
}

/// 401 `SESSION_ENDED`: the token's session was revoked, or its user's role changed since.
fn session_ended() -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "SESSION_ENDED",
        "the session has ended or its role changed; log in again",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BrowserPolicy {
        BrowserPolicy {
            keys: Arc::new(TokenKeys::new("test-secret-test-secret-test-secret")),
            revocations: Arc::new(crate::revocation::Revocations::new(Arc::new(
                holdfast_common::kv::MemoryStore::new(),
            ))),
            allowed_origins: Arc::new(vec!["http://localhost:5173".into()]),
            default_scheme: "http",
            trusted_proxies: TrustedProxies::default(),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("host", HeaderValue::from_static("gateway.test:8080"));
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn origins_are_reduced_to_scheme_and_authority() {
        assert_eq!(
            origin_of("https://A.test:8443/path?q#f").as_deref(),
            Some("https://a.test:8443")
        );
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("https://"), None);
    }

    #[tokio::test]
    async fn the_csrf_check_follows_origin_then_referer_then_fetch_metadata() {
        let p = policy();
        assert!(p.passes_csrf_check(&headers(&[("origin", "http://localhost:5173")]), false));
        assert!(p.passes_csrf_check(&headers(&[("origin", "http://gateway.test:8080")]), false));
        assert!(!p.passes_csrf_check(&headers(&[("origin", "https://evil.test")]), false));
        assert!(!p.passes_csrf_check(&headers(&[("origin", "null")]), false));
        // Origin wins over an allowed Referer.
        assert!(!p.passes_csrf_check(
            &headers(&[
                ("origin", "https://evil.test"),
                ("referer", "http://localhost:5173/page"),
            ]),
            false
        ));
        assert!(p.passes_csrf_check(
            &headers(&[("referer", "http://localhost:5173/checkout")]),
            false
        ));
        assert!(!p.passes_csrf_check(&headers(&[("referer", "https://evil.test/x")]), false));
        assert!(!p.passes_csrf_check(&headers(&[("sec-fetch-site", "cross-site")]), false));
        assert!(p.passes_csrf_check(&headers(&[("sec-fetch-site", "same-origin")]), false));
        assert!(p.passes_csrf_check(&headers(&[]), false));
        // Behind a trusted TLS-terminating proxy, the forwarded scheme and host are the
        // origin; from anyone else they are just headers a client chose.
        let behind_proxy = headers(&[
            ("origin", "https://tickets.test"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "tickets.test"),
        ]);
        assert!(p.passes_csrf_check(&behind_proxy, true));
        assert!(!p.passes_csrf_check(&behind_proxy, false));
        let forged = headers(&[
            ("origin", "https://evil.test"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.test"),
        ]);
        assert!(!p.passes_csrf_check(&forged, false));
    }
}
